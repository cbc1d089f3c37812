"""Revocation through a CA that cannot revoke (AD CS via certsrv): a 4xx and an operator task."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from connectors.adcs.connector import CertsrvConnector, CertsrvSettings
from gateway import cli, keys
from tests.acme.flow import validate_all
from tests.acmeclient import AcmeClient, b64, make_csr
from tests.connectors.simulators import acme_through, certsrv_options
from tests.e2e.harness import to_toml
from tests.fakes.certsrv import CertsrvSimulator


async def _issued_through_certsrv(tmp_path: Path, aiohttp_client: Any,
                                  sim: CertsrvSimulator) -> tuple[Any, AcmeClient, bytes]:
    corp = CertsrvConnector("corp", CertsrvSettings.from_options(
        certsrv_options(sim, "basic"), tmp_path, "corp"))
    app, c = await acme_through(aiohttp_client, tmp_path, corp, "adcs", {"template": "WebServer"})
    _, order = await c.new_order(["rev.corp.example"])
    await validate_all(c, order)
    _, done = await c.post(order["finalize"], {"csr": b64(make_csr(["rev.corp.example"])[0])})
    assert done["status"] == "valid", done
    _, pem = await c.post(done["certificate"])
    der = x509.load_pem_x509_certificates(pem.encode())[0].public_bytes(Encoding.DER)
    return app, c, der


def _cli(tmp_path: Path, *args: str) -> int:
    """``acme-gateway`` on the test gateway's database, as an operator runs it."""
    config = tmp_path / "gw.toml"
    config.write_text(to_toml({"server": {"data_dir": str(tmp_path / "gw")},
                               "cas": {"corp": {"type": "adcs"}},
                               "profiles": {"default": {"ca": "corp"}}}))
    return cli.main(["--config", str(config), *args])


async def test_adcs_revocation_is_a_4xx_and_an_operator_task(tmp_path: Path, capsys: Any,
                                                              aiohttp_client: Any) -> None:
    sim = CertsrvSimulator(tmp_path / "certsrv", auth="basic")
    await sim.start()
    try:
        app, c, der = await _issued_through_certsrv(tmp_path, aiohttp_client, sim)
        core = app[keys.CORE]
        for _ in range(2):  # asking twice opens one task, not two
            resp, body = await c.post(c.directory["revokeCert"],
                                      {"certificate": b64(der), "reason": 1})
            assert resp.status == 403, body
            assert body["type"] == "urn:ietf:params:acme:error:userActionRequired"
            assert "Certification Authority console" in body["detail"]
        [task] = await core.issuance.tasks.open_tasks()
        serial = format(x509.load_der_x509_certificate(der).serial_number, "x")
        assert (task.kind, task.ca, task.serial, task.reason) == ("revoke", "corp", serial, 1)
        assert task.id in body["detail"] and "certutil -revoke" in task.instructions
        cert = await core.issuance.store.get_certificate_by_serial(serial)
        assert cert is not None and cert.revoked_at is None  # the CA has not revoked it yet
        assert await asyncio.to_thread(_cli, tmp_path, "tasks", "list") == 0
        assert task.id in capsys.readouterr().out
        assert await asyncio.to_thread(_cli, tmp_path, "tasks", "done", task.id) == 0
        assert f"certificate {serial} recorded as revoked" in capsys.readouterr().out
        assert await core.issuance.tasks.open_tasks() == []
        cert = await core.issuance.store.get_certificate_by_serial(serial)
        assert cert is not None and cert.revoked_at is not None and cert.revocation_reason == 1
        rows = await core.audit.store.audit_rows(0, 1000)
        events = [r["event"] for r in rows]
        assert events.count("operator_task") == 1 and "operator_task_done" in events
        assert events[-1] == "revoked"
    finally:
        await sim.stop()
