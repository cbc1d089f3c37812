"""Order-flow steps shared by the ACME handler tests."""

from __future__ import annotations

from typing import Any

from tests.acme.support import eventually
from tests.acmeclient import AcmeClient, b64, make_csr


async def validate_all(c: AcmeClient, order: dict[str, Any]) -> None:
    """Answer one challenge of every authorization and wait until each is decided."""
    for authz_url in order["authorizations"]:
        _, authz = await c.post(authz_url)
        chall = next(ch for ch in authz["challenges"]
                     if ch["type"] == ("dns-01" if authz.get("wildcard") else "http-01"))
        resp, _ = await c.post(chall["url"], {})
        assert resp.status == 200

        async def decided(url: str = authz_url) -> bool:
            _, body = await c.post(url)
            return bool(body["status"] != "pending")

        await eventually(decided)


async def issue(c: AcmeClient, names: list[str]) -> tuple[str, dict[str, Any], Any]:
    """A whole order: returns (order URL, final order, certificate key)."""
    order_url, order = await c.new_order(names)
    await validate_all(c, order)
    csr, key = make_csr(names)
    resp, done = await c.post(order["finalize"], {"csr": b64(csr)})
    assert resp.status == 200, done
    return order_url, done, key
