"""The plain-HTTP /pkix/ listener: openssl fetches the CRL and asks OCSP at the URLs in a leaf."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID

from connectors.base import Issued, RevocationReason
from connectors.localca.connector import LocalCAConnector
from gateway import config, pkix_listener
from gateway.app import build_connectors, create_app
from gateway.errors import StartError
from tests.acme.support import FakeValidator
from tests.e2e.harness import free_port
from tests.pkix.localca_support import issue_request

PEM = Encoding.PEM


@pytest.fixture
async def served(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[tuple[Any, int]]:
    """A gateway app (local CA) and its /pkix/ listener on a free port."""
    port = free_port()
    settings = config.parse({"server": {"data_dir": str(tmp_path), "pkix_http_port": port}},
                            "pkix-test")
    connectors = build_connectors(settings)
    app = create_app(settings, validator=FakeValidator(), connectors=connectors)
    await aiohttp_client(app)  # runs the cleanup context: the CA starts
    runner = await pkix_listener.start(app, settings.server)
    assert runner is not None
    yield connectors["local"], port
    await runner.cleanup()


async def _openssl(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "openssl", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


def _urls(leaf: x509.Certificate) -> tuple[str, str]:
    cdp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    ocsp = [d.access_location.value for d in aia
            if d.access_method == AuthorityInformationAccessOID.OCSP]
    return cdp[0].full_name[0].value, ocsp[0]  # type: ignore[index]


async def test_openssl_checks_revocation_at_the_urls_in_a_leaf(served: tuple[Any, int],
                                                               tmp_path: Path) -> None:
    ca, port = served
    assert isinstance(ca, LocalCAConnector)
    issued = await ca.issue(issue_request(("relying.example.org",)))
    assert isinstance(issued, Issued)
    leaf = x509.load_der_x509_certificate(issued.leaf_der)
    crl_url, ocsp_url = _urls(leaf)
    assert crl_url == f"http://127.0.0.1:{port}/pkix/local/crl"
    assert ocsp_url == f"http://127.0.0.1:{port}/pkix/local/ocsp"
    issuing = x509.load_der_x509_certificate(issued.chain_der[0])
    root_cdp = issuing.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    root_cdp_url = root_cdp[0].full_name[0].value  # type: ignore[index]
    assert root_cdp_url == f"http://127.0.0.1:{port}/pkix/local/root-crl"
    leaf_pem, ca_pem = tmp_path / "leaf.pem", tmp_path / "ca.pem"
    leaf_pem.write_bytes(leaf.public_bytes(PEM))
    ca_pem.write_bytes(b"".join(x509.load_der_x509_certificate(c).public_bytes(PEM)
                                for c in await ca.ca_certs()))
    # -crl_check_all: the leaf against the issuing CA's CRL, the issuing CA against the
    # root's CRL; openssl downloads both from the distribution points in the certificates.
    # The root names no CRL of its own (nothing is above it): its CRL is handed over.
    root_crl = tmp_path / "root-crl.pem"
    async with aiohttp.ClientSession() as http, http.get(root_cdp_url) as resp:
        root_crl.write_bytes(x509.load_der_x509_crl(await resp.read()).public_bytes(PEM))
    verify = ("verify", "-crl_check_all", "-crl_download", "-CRLfile", str(root_crl),
              "-CAfile", str(ca_pem), str(leaf_pem))
    ask = ("ocsp", "-issuer", str(ca_pem), "-cert", str(leaf_pem), "-url", ocsp_url,
           "-CAfile", str(ca_pem))
    code, out = await _openssl(*verify)
    assert code == 0 and "OK" in out, out
    code, out = await _openssl(*ask)
    assert code == 0 and f"{leaf_pem}: good" in out, out
    await ca.revoke(issued.leaf_der, RevocationReason.KEY_COMPROMISE)
    code, out = await _openssl(*verify)
    assert code != 0 and "certificate revoked" in out, out
    code, out = await _openssl(*ask)
    assert f"{leaf_pem}: revoked" in out and "Reason: keyCompromise" in out, out


async def test_the_listener_serves_only_pkix(served: tuple[Any, int]) -> None:
    _, port = served
    async with aiohttp.ClientSession() as http:
        for path in ("/acme/directory", "/.well-known/est/cacerts", "/metrics", "/healthz"):
            async with http.get(f"http://127.0.0.1:{port}{path}") as resp:
                assert resp.status == 404, path
        async with http.get(f"http://127.0.0.1:{port}/pkix/local/crl") as resp:
            assert resp.status == 200 and resp.content_type == "application/pkix-crl"


async def test_a_taken_port_stops_the_start_naming_it(tmp_path: Path) -> None:
    """Certificates would name CRL/OCSP URLs that another process answers: never serve so."""
    busy = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = busy.sockets[0].getsockname()[1]
    try:
        settings = config.parse({"server": {"data_dir": str(tmp_path), "pkix_http_port": port}},
                                "t")
        app = create_app(settings, validator=FakeValidator(), connectors={})
        with pytest.raises(StartError) as err:
            await pkix_listener.start(app, settings.server)
    finally:
        busy.close()
    assert f"127.0.0.1:{port} ([server] pkix_http_port)" in str(err.value)


@pytest.mark.parametrize(("server", "expected"), [
    ({}, "http://127.0.0.1:8080"),
    ({"pkix_http_port": 9080, "base_url": "https://acme.corp.example"},
     "http://acme.corp.example:9080"),
    ({"listen": "::1", "pkix_http_port": 80}, "http://[::1]:80"),
    ({"pkix_http_port": 0}, "https://127.0.0.1:8443"),  # off: the HTTPS base, as before
])
def test_certificates_name_plain_http_urls(server: dict[str, Any], expected: str) -> None:
    assert config.parse({"server": server}, "t").server.pkix_base_url() == expected
