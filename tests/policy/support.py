"""What policy tests share: a gateway with profiles, and the order steps they drive."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway import keys
from gateway.core.service import Core
from tests.acme.flow import validate_all
from tests.acme.support import FakeValidator, make_settings
from tests.acmeclient import AcmeClient, b64

PROFILES: dict[str, Any] = {
    "default": {"ca": "local"},
    "strict": {"ca": "local", "allowed_patterns": ["*.example.com", r"re:^host[0-9]+\.corp\.test$"],
               "allow_wildcards": False, "allow_ip": False, "max_identifiers": 2,
               "key_types": ["ec"], "min_ec_bits": 384},
    "bigrsa": {"ca": "local", "key_types": ["rsa"], "min_rsa_bits": 3072},
    "tls": {"ca": "local", "ekus": ["serverAuth"], "rfc2818": True, "allow_key_reuse": False,
            "cn_from_first_san": True},
    "manual": {"ca": "local", "approval_required": True},
}


@dataclass
class PolicyGateway:
    """The running app, its core, and an ACME client factory."""

    http: Any
    validator: FakeValidator

    @property
    def core(self) -> Core:
        """The app's core (store, services)."""
        return self.http.server.app[keys.CORE]

    async def client(self) -> AcmeClient:
        """A registered ACME client."""
        c = AcmeClient(self.http.session, str(self.http.make_url("/acme/directory")))
        await c.start()
        await c.register()
        return c

    async def audit(self, event: str | None = None) -> list[dict[str, Any]]:
        """Audit rows, optionally of one event type."""
        rows = await self.core.audit.store.audit_rows(0, 100_000)
        return [r for r in rows if event is None or r["event"] == event]


async def new_order(c: AcmeClient, names: list[str],
                    profile: str | None = None) -> tuple[Any, Any]:
    """POST newOrder with an optional profile; returns (response, body)."""
    idents = [{"type": "ip", "value": n[3:]} if n.startswith("ip:") else
              {"type": "dns", "value": n} for n in names]
    payload: dict[str, Any] = {"identifiers": idents}
    if profile is not None:
        payload["profile"] = profile
    return await c.post(c.directory["newOrder"], payload)


async def ready_order(c: AcmeClient, names: list[str], profile: str) -> dict[str, Any]:
    """An order of ``profile`` whose authorizations are valid."""
    resp, order = await new_order(c, names, profile)
    assert resp.status == 201, order
    await validate_all(c, order)
    order["url"] = resp.headers["Location"]
    return dict(order)


async def finalize(c: AcmeClient, order: dict[str, Any], csr: bytes) -> tuple[Any, Any]:
    """POST the CSR to the order's finalize URL."""
    return await c.post(order["finalize"], {"csr": b64(csr)})


def settings_for(tmp_path: Any, **tables: Any) -> Any:
    """Settings with the test profiles and fast job scans."""
    return make_settings(tmp_path, profiles=PROFILES,
                         acme={"finalize_wait_seconds": 5.0, "retry_after_seconds": 1},
                         jobs={"scan_period_seconds": 0.05}, **tables)
