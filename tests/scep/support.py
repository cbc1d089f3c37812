"""SCEP test support: the gateway on a loopback HTTP port with SCEP labels, and devices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway import config, keys
from gateway.app import create_app
from gateway.core.scep import ScepGate
from gateway.core.service import Core
from gateway.model.clock import Clock
from gateway.scep.handlers import SCEP_RA, SCEP_SETTINGS
from tests.e2e.harness import free_port
from tests.est.support import settings_doc
from tests.scep.client import ScepClient, rsa_key, self_signed

PASSWORD = "router-enrollment-secret"


def scep_section(tmp: Path, **overrides: Any) -> dict[str, Any]:
    """A [scep] table: a static-password label, a one-time-password label, a held one."""
    secret = tmp / "scep-routers.secret"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    labels = {
        "routers": {"profile": "routers", "password_file": str(secret),
                    "names": ["*.routers.example.net"]},
        "otp": {"profile": "routers", "one_time_passwords": True},
        "held": {"profile": "held", "password_file": str(secret), "names": ["*.example.net"]},
        "legacy": {"profile": "routers", "password_file": str(secret),
                   "names": ["*.example.net"], "legacy_algorithms": True, "renewal": False},
    }
    section: dict[str, Any] = {"labels": labels, "default_label": "routers",
                               "enroll_wait_seconds": 2.0}
    section.update(overrides)
    return section


@dataclass
class ScepGateway:
    """A running gateway serving SCEP over plain HTTP."""

    base: str  # http://127.0.0.1:PORT/scep
    app: web.Application

    @property
    def core(self) -> Core:
        """The running core."""
        return self.app[keys.CORE]

    @property
    def _scep(self) -> web.Application:
        return next(a for a in self.app._subapps if SCEP_SETTINGS in a)

    @property
    def ra_cert(self) -> bytes:
        """The RA certificate (DER)."""
        return self._scep[SCEP_RA].cert_der

    def gate(self, label: str) -> ScepGate:
        """How ``label`` authorizes requests."""
        found = self._scep[SCEP_SETTINGS].labels[label]
        return found.gate

    async def audit(self, event: str) -> list[dict[str, Any]]:
        """The audit rows of one event."""
        rows = await self.core.est.store.audit_rows(0, 1000)  # type: ignore[attr-defined]
        return [r for r in rows if r["event"] == event]

    def device(self, label: str = "routers", cn: str = "device") -> ScepClient:
        """A new device with its own RSA key and self-signed signing certificate."""
        key = rsa_key()
        return ScepClient(f"{self.base}/{label}/pkiclient.exe", self.ra_cert, key,
                          self_signed(key, cn))

    async def get(self, path: str) -> tuple[int, str, bytes]:
        """GET ``path`` under /scep: status, content type and body."""
        async with aiohttp.ClientSession() as session, session.get(self.base + path) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


@asynccontextmanager
async def running_scep(tmp: Path, scep: dict[str, Any] | None = None,
                       clock: Clock | None = None, **tables: Any) -> AsyncIterator[ScepGateway]:
    """The real app on a loopback HTTP port with the SCEP labels of :func:`scep_section`.

    ``tables`` adds config tables (e.g. ``admin``).
    """
    doc = settings_doc(tmp, {})
    doc["scep"] = scep or scep_section(tmp)
    doc.update(tables)
    doc["rate_limits"] = {"enabled": False}
    port = free_port()
    doc["server"].update({"http_port": port, "https_port": 0, "pkix_http_port": free_port()})
    settings = config.parse(doc, "scep-test")
    app = create_app(settings, clock=clock)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield ScepGateway(f"http://127.0.0.1:{port}/scep", app)
    finally:
        await runner.cleanup()
