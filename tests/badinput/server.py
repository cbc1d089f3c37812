"""The gateway the battery talks to, on a loopback port, and what it holds for the cases.

One process serves ACME and EST over plain HTTP (the front ends do not care how
the bytes arrived); validations are answered by the fake validator of the ACME
tests, so orders become ready without network access.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from gateway import config, tls
from gateway.app import create_app
from gateway.est.passwords import hash_password
from tests.acme.flow import issue, validate_all
from tests.acme.support import FakeValidator
from tests.acmeclient import AcmeClient

USER = ("device", "device password")
ADMIN_TOKEN = "badinput-admin-token"
DER = Encoding.DER


def settings_doc(data_dir: Path) -> dict[str, Any]:
    """Embedded defaults, EST labels (without and with Basic), a SCEP label, the admin API."""
    token_file = data_dir / "admin.token"
    token_file.write_text(ADMIN_TOKEN)
    return {
        "server": {"data_dir": str(data_dir), "access_log": False},
        "admin": {"token_file": str(token_file)},
        "acme": {"finalize_wait_seconds": 2.0},
        "est": {"users": {USER[0]: hash_password(USER[1], 1000)},
                "enroll_wait_seconds": 1.0,
                "labels": {"default": {"profile": "default", "auth": "none"},
                           "basic": {"profile": "default", "auth": "basic"}}},
        "scep": {"default_label": "dev",
                 "labels": {"dev": {"profile": "default", "one_time_passwords": True}}},
    }


@dataclass
class Target:
    """A served gateway and the resources of one registered account, for building cases."""

    base: str
    client: AcmeClient
    key: ec.EllipticCurvePrivateKey
    kid: str
    directory: dict[str, Any]
    ready_finalize: str = ""
    pending_order: str = ""
    pending_authz: str = ""
    challenge: str = ""
    certificate: str = ""
    certificate_der: bytes = b""
    plain_base: str = ""
    certificate_id: str = ""
    certificate_serial: str = ""
    admin_cookie: str = ""  # "gw_console=..." of a console session
    admin_csrf: str = ""

    def url(self, path: str) -> str:
        """An absolute URL of this gateway."""
        return self.base + path


async def prepare(base: str, session: aiohttp.ClientSession) -> Target:
    """Register an account and make the resources the cases address."""
    client = AcmeClient(session, base + "/acme/directory")
    await client.start()
    await client.register()
    assert client.kid is not None
    target = Target(base, client, client.key, client.kid, client.directory)
    _, ready = await client.new_order(["ready.badinput.example"])
    await validate_all(client, ready)
    target.ready_finalize = ready["finalize"]
    target.pending_order, pending = await client.new_order(["pending.badinput.example"])
    target.pending_authz = pending["authorizations"][0]
    _, authz = await client.post(target.pending_authz)
    target.challenge = authz["challenges"][0]["url"]
    _, done, _ = await issue(client, ["issued.badinput.example"])
    target.certificate = done["certificate"]
    resp, pem = await client.post(target.certificate)
    assert resp.status == 200, pem
    leaf = x509.load_pem_x509_certificate(pem.encode())
    target.certificate_der = leaf.public_bytes(DER)
    target.certificate_id = target.certificate.rsplit("/", 1)[1]
    target.certificate_serial = f"{leaf.serial_number:x}"
    await _console_session(target, session)
    return target


async def _console_session(target: Target, session: aiohttp.ClientSession) -> None:
    """Log in to the console; the cases send the cookie themselves (or a spoiled one)."""
    async with session.post(target.url("/admin/login"), allow_redirects=False,
                            data={"token": ADMIN_TOKEN, "operator": "battery"}) as resp:
        assert resp.status == 303, await resp.text()
        target.admin_cookie = resp.headers["Set-Cookie"].split(";", 1)[0]
    session.cookie_jar.clear()
    async with session.get(target.url("/admin/console/accounts"),
                           headers={"Cookie": target.admin_cookie}) as resp:
        page = await resp.text()
    target.admin_csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]


@asynccontextmanager
async def served_gateway(data_dir: Path) -> AsyncIterator[tuple[str, str, ssl.SSLContext]]:
    """The gateway over HTTPS (EST enrollment needs TLS) and plain HTTP, on 127.0.0.1.

    Yields the HTTPS base URL, the plain one (where a raw request can end with a
    half-close, which TLS cannot do) and a client TLS context that trusts the
    gateway's certificate.
    """
    settings = config.parse(settings_doc(data_dir), "badinput.toml")
    cert = tls.ensure_self_signed(settings.server)
    app = create_app(settings, validator=FakeValidator())
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    https = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context(settings.server))
    plain = web.TCPSite(runner, "127.0.0.1", 0)
    await https.start()
    await plain.start()
    try:
        yield (f"https://127.0.0.1:{_port(https)}", f"http://127.0.0.1:{_port(plain)}",
               ssl.create_default_context(cafile=str(cert)))
    finally:
        await runner.cleanup()


def _port(site: web.TCPSite) -> int:
    server = site._server  # aiohttp keeps the listening socket here only
    assert server is not None
    return int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
