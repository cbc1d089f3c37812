"""A profile that needs an approver: 202 until someone decides; the re-POST gets the answer."""

from __future__ import annotations

import asyncio

from tests.est.support import ALICE, Gateway, b64, certs_of, ec_key, make_csr, request


async def _held_order_id(gw: Gateway) -> str:
    for _ in range(50):
        held = await gw.core.approvals.pending()
        if held:
            return held[0].id
        await asyncio.sleep(0.05)
    raise AssertionError("nothing is waiting for approval")


async def _repost_until_decided(gw: Gateway, csr: bytes) -> tuple[int, bytes]:
    for _ in range(60):
        status, _, body = await request(gw, "POST", "/held/simpleenroll", csr, ALICE)
        if status != 202:
            return status, body
        await asyncio.sleep(0.1)
    raise AssertionError("still pending")


async def test_approved_request_is_answered_on_repost(gw: Gateway) -> None:
    csr = b64(make_csr(ec_key()))
    status, headers, _ = await request(gw, "POST", "/held/simpleenroll", csr, ALICE)
    assert status == 202 and headers["Retry-After"] == "1"
    order_id = await _held_order_id(gw)
    await gw.core.approvals.approve(order_id, "officer")
    status, body = await _repost_until_decided(gw, csr)
    assert status == 200 and certs_of(body)


async def test_rejected_request_gets_the_reason(gw: Gateway) -> None:
    csr = b64(make_csr(ec_key()))
    status, _, _ = await request(gw, "POST", "/held/simpleenroll", csr, ALICE)
    assert status == 202
    await gw.core.approvals.reject(await _held_order_id(gw), "officer", "unknown device")
    status, body = await _repost_until_decided(gw, csr)
    assert status == 403 and b"unknown device" in body
