"""The disaster-recovery drill of docs/deployment.md, run: pg_dump, restore, serve, check.

A gateway on PostgreSQL issues three certificates and revokes one. Its
database is dumped with pg_dump and restored into an empty database, and a
new node starts on it with nothing but the CA key and certificate copied from
the first. The audit chain verifies, the account downloads the same
certificates, OCSP and the CRL know the revocation, and a new order issues.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from gateway import audit_report
from gateway.app import create_app
from gateway.storage.postgres import PostgresStore
from tests.acme.flow import issue
from tests.acme.support import FakeValidator, make_settings
from tests.acmeclient import AcmeClient, b64
from tests.alternating import AlternatingSession
from tests.pgserver import BIN, PostgresServer
from tests.pkix.localca_support import ocsp_request_der

pytestmark = pytest.mark.external("postgres")
BASE = "https://acme.example.net"


async def _node(aiohttp_client: Any, data_dir: Path, url: str) -> tuple[Any, AlternatingSession]:
    settings = make_settings(data_dir, server={"base_url": BASE}, storage={"url": url},
                             acme={"finalize_wait_seconds": 5.0})
    http = await aiohttp_client(create_app(settings, validator=FakeValidator()))
    return http, AlternatingSession(BASE, [(http, "")])


async def _run(*cmd: str) -> None:
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()


async def _audit_rows(url: str) -> int:
    store = PostgresStore(url)
    await store.open()
    try:
        check = await audit_report.verify(store)
    finally:
        await store.close()
    assert check.problems == []
    return check.rows


async def _ocsp_status(http: Any, leaf: x509.Certificate,
                       issuer: x509.Certificate) -> ocsp.OCSPCertStatus:
    resp = await http.post("/pkix/local/ocsp", data=ocsp_request_der(leaf, issuer),
                           headers={"Content-Type": "application/ocsp-request"})
    assert resp.status == 200
    return ocsp.load_der_ocsp_response(await resp.read()).certificate_status


async def test_a_restored_dump_serves_what_the_original_served(
        aiohttp_client: Any, tmp_path: Path, postgres_server: PostgresServer) -> None:
    original_url = await postgres_server.new_database()
    http, session = await _node(aiohttp_client, tmp_path / "a", original_url)
    client = AcmeClient(session, f"{BASE}/acme/directory")
    await client.start()
    await client.register()
    orders = [await issue(client, [f"dr{i}.example.net"]) for i in range(3)]
    pems = []
    for _, order, _ in orders:
        _, pem = await client.post(order["certificate"])
        pems.append(pem)
    leaves = [x509.load_pem_x509_certificates(p.encode()) for p in pems]
    resp, body = await client.post(client.directory["revokeCert"],
                                   {"certificate": b64(leaves[0][0].public_bytes(
                                       Encoding.DER)), "reason": 1})
    assert resp.status == 200, body
    events = await _audit_rows(original_url)
    await http.close()

    dump = tmp_path / "gateway.dump"
    await _run(str(BIN / "pg_dump"), "--format=custom", f"--file={dump}", original_url)
    restored_url = await postgres_server.new_database()
    await _run(str(BIN / "pg_restore"), "--no-owner", f"--dbname={restored_url}", str(dump))
    ca_dir = tmp_path / "b" / "ca" / "local"
    ca_dir.mkdir(parents=True)
    for name in ("ca.key.pem", "ca.pem"):  # the CA key, kept apart from the database
        shutil.copy(tmp_path / "a" / "ca" / "local" / name, ca_dir / name)

    assert await _audit_rows(restored_url) == events
    http, session = await _node(aiohttp_client, tmp_path / "b", restored_url)
    client.session = session
    await client.start()
    for (_, order, _), pem in zip(orders, pems, strict=True):
        _, again = await client.post(order["certificate"])
        assert again == pem
    issuer = leaves[0][1]
    assert await _ocsp_status(http, leaves[0][0], issuer) == ocsp.OCSPCertStatus.REVOKED
    assert await _ocsp_status(http, leaves[1][0], issuer) == ocsp.OCSPCertStatus.GOOD
    crl_resp = await http.get("/pkix/local/crl")
    crl = x509.load_der_x509_crl(await crl_resp.read())
    assert crl.get_revoked_certificate_by_serial_number(leaves[0][0].serial_number)
    assert crl.get_revoked_certificate_by_serial_number(leaves[1][0].serial_number) is None
    _, new_order, _ = await issue(client, ["after-restore.example.net"])
    assert new_order["status"] == "valid"
