"""End to end: real ACME clients → gateway → CA simulators.

* certbot → gateway → certsrv simulator in pending mode → an officer approves
  in the simulator → certbot receives the certificate it was waiting for.
* lego → gateway → EJBCA simulator (client-certificate TLS) → certificate.

The gateway runs in this process (its real app, store, validation authority
and connector); HTTP-01 is validated for real against the client's standalone
server on a loopback port, resolved through a loopback DNS responder.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509

from gateway import config, tls
from gateway.app import create_app
from tests.conftest import require_tool
from tests.connectors.simulators import certsrv_options, ejbca_options
from tests.e2e.harness import free_port, run
from tests.fakes.certsrv import CertsrvSimulator
from tests.fakes.ejbca import EjbcaSimulator
from tests.validation.dnsserver import DnsResponder

DOMAIN = "e2e.gateway.test"
CLIENT_TIMEOUT = 90.0


@asynccontextmanager
async def _gateway(
    tmp: Path, ca: dict[str, Any], params: dict[str, str]
) -> AsyncIterator[tuple[str, Path, int]]:
    """The gateway on a loopback port: its directory URL, TLS certificate and HTTP-01 port."""
    dns = DnsResponder()
    await dns.start()
    dns.zone.add(DOMAIN, "A", "127.0.0.1")
    http01 = free_port()
    doc = {
        "server": {"data_dir": str(tmp / "gw"), "listen": "127.0.0.1", "https_port": free_port()},
        "acme": {"finalize_wait_seconds": 1.0, "retry_after_seconds": 1},
        "validation": {
            "resolvers": [f"127.0.0.1:{dns.port}"],
            "allow_loopback": True,
            "http01_port": http01,
            "attempts": 1,
            "challenge_types": ["http-01"],
        },
        "cas": {"corp": ca},
        "profiles": {"default": {"ca": "corp", "ca_params": params}},
    }
    settings = config.parse(doc, "e2e")
    cert = tls.ensure_self_signed(settings.server)
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    await web.TCPSite(
        runner,
        "127.0.0.1",
        settings.server.https_port,
        ssl_context=tls.server_context(settings.server),
    ).start()
    try:
        yield f"https://127.0.0.1:{settings.server.https_port}/acme/directory", cert, http01
    finally:
        await runner.cleanup()
        await dns.close()


async def _approve_when_pending(sim: CertsrvSimulator) -> int:
    """Act as the certificate manager: approve the first request once it arrives."""
    await sim.submitted.wait()
    req_id = next(iter(sim.requests))
    assert sim.requests[req_id].status == "pending"
    sim.approve(req_id)
    return req_id


async def test_certbot_waits_for_certsrv_approval(tmp_path: Path) -> None:
    require_tool("certbot")
    sim = CertsrvSimulator(tmp_path / "certsrv", mode="pending", auth="ntlm")
    await sim.start()
    ca = certsrv_options(sim, "ntlm", poll_interval_seconds=1.0)
    try:
        async with _gateway(tmp_path, ca, {"template": "WebServer"}) as (url, cert, port):
            d = tmp_path / "certbot"
            approver = asyncio.create_task(_approve_when_pending(sim))
            code, out = await run(
                [
                    "certbot",
                    "certonly",
                    "--non-interactive",
                    "--agree-tos",
                    "--register-unsafely-without-email",
                    "--server",
                    url,
                    "--standalone",
                    "--http-01-port",
                    str(port),
                    "--http-01-address",
                    "127.0.0.1",
                    "-d",
                    DOMAIN,
                    "--config-dir",
                    str(d / "c"),
                    "--work-dir",
                    str(d / "w"),
                    "--logs-dir",
                    str(d / "l"),
                ],
                {"REQUESTS_CA_BUNDLE": str(cert)},
            )
            assert code == 0, out
            req_id = await approver
    finally:
        await sim.stop()
    leaf = x509.load_pem_x509_certificate((d / "c" / "live" / DOMAIN / "cert.pem").read_bytes())
    assert leaf.issuer == sim.ca.cert.subject
    assert leaf.serial_number == sim.requests[req_id].cert.serial_number  # type: ignore[union-attr]


async def test_lego_through_ejbca(tmp_path: Path) -> None:
    require_tool("lego")
    sim = EjbcaSimulator(tmp_path / "ejbca")
    await sim.start()
    try:
        async with _gateway(tmp_path, ejbca_options(sim), {"username_strategy": "cn"}) as (
            url,
            cert,
            port,
        ):
            d = tmp_path / "lego"
            code, out = await run(
                [
                    "lego",
                    "--server",
                    url,
                    "--email",
                    "ops@example.net",
                    "--accept-tos",
                    "--domains",
                    DOMAIN,
                    "--http",
                    "--http.port",
                    f"127.0.0.1:{port}",
                    "--path",
                    str(d),
                    "run",
                ],
                {"LEGO_CA_CERTIFICATES": str(cert)},
            )
            assert code == 0, out
    finally:
        await sim.stop()
    pem = (d / "certificates" / f"{DOMAIN}.crt").read_bytes()
    leaf = x509.load_pem_x509_certificates(pem)[0]
    assert leaf.issuer == sim.ca.cert.subject
    assert list(sim.entities) == [DOMAIN]
