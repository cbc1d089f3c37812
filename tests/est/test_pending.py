"""A CA that defers: 202 + Retry-After, the device re-POSTs the same CSR, one certificate."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from tests.est.support import (
    ALICE,
    Manufacturer,
    b64,
    certs_of,
    ec_key,
    est_section,
    make_csr,
    request,
    running_gateway,
)
from tests.fakes.scripted_ca import ScriptedCA


def deferring_ca(polls_until_issued: int = 1, reject: str = "") -> ScriptedCA:
    """Pending at issue, then Issued on the ``polls_until_issued``-th poll (or a refusal)."""
    if reject:
        return ScriptedCA("pending", "reject", name="slow", retry_after=0.05, reason=reject)
    steps = ["pending"] * polls_until_issued + ["issue"]
    return ScriptedCA(*steps, name="slow", retry_after=0.05)


async def _until_not_202(gw: object, body: bytes, tries: int = 40) -> tuple[int, bytes]:
    for _ in range(tries):
        status, headers, answer = await request(gw, "POST", "/slow/simpleenroll",  # type: ignore[arg-type]
                                                body, ALICE)
        if status != 202:
            return status, answer
        assert headers["Retry-After"] == "1"
        await asyncio.sleep(0.1)
    raise AssertionError("still pending")


async def test_pending_then_issued_on_repost(tmp_path: Path) -> None:
    ca = deferring_ca(polls_until_issued=2)
    est = est_section(Manufacturer(tmp_path).ca_file, enroll_wait_seconds=0.2)
    async with running_gateway(tmp_path, est, slow=ca) as gw:
        csr = b64(make_csr(ec_key()))
        status, headers, body = await request(gw, "POST", "/slow/simpleenroll", csr, ALICE)
        assert status == 202 and headers["Retry-After"] == "1"
        assert int(headers["Content-Length"]) == len(body)
        status, body = await _until_not_202(gw, csr)
        assert status == 200, body
        (leaf,) = certs_of(body)
        assert leaf.issuer == ca.ca.cert.subject
        # Answered again from the store, never issued twice.
        status, _, again = await request(gw, "POST", "/slow/simpleenroll", csr, ALICE)
        assert status == 200 and certs_of(again)[0] == leaf
        assert len(ca.issue_calls) == 1


async def test_concurrent_reposts_make_one_order(tmp_path: Path) -> None:
    ca = deferring_ca(polls_until_issued=3)
    est = est_section(Manufacturer(tmp_path).ca_file, enroll_wait_seconds=0.0)
    async with running_gateway(tmp_path, est, slow=ca) as gw:
        csr = b64(make_csr(ec_key()))
        answers = await asyncio.gather(*(request(gw, "POST", "/slow/simpleenroll", csr, ALICE)
                                         for _ in range(6)))
        assert {a[0] for a in answers} == {202}
        status, _ = await _until_not_202(gw, csr)
        assert status == 200 and len(ca.issue_calls) == 1


async def test_refusal_is_reported_on_repost(tmp_path: Path) -> None:
    ca = deferring_ca(reject="denied by officer")
    est = est_section(Manufacturer(tmp_path).ca_file, enroll_wait_seconds=0.0)
    async with running_gateway(tmp_path, est, slow=ca) as gw:
        csr = b64(make_csr(ec_key()))
        status, body = await _until_not_202(gw, csr)
        assert status == 403 and b"denied by officer" in body
        status, _, body = await request(gw, "POST", "/slow/simpleenroll", csr, ALICE)
        assert status == 403 and b"denied by officer" in body
        assert len(ca.issue_calls) == 1


async def test_order_failed_for_unreachable_ca_is_retried_once(tmp_path: Path) -> None:
    from gateway.core.est import order_id_for
    from gateway.model.records import INVALID, Order
    from gateway.model.store import Insert

    async with running_gateway(tmp_path, est_section(Manufacturer(tmp_path).ca_file)) as gw:
        der = make_csr(ec_key())
        first = order_id_for("est:user:alice", der, "")
        now = datetime.now(UTC)
        failed = Order(id=first, account_id="est:user:alice", status=INVALID, identifiers=(),
                       authz_ids=(), expires=now, profile="routers", created_at=now,
                       error={"kind": "caUnavailable", "detail": "the CA is down"})
        assert await gw.core.est.store.apply([Insert(failed)])
        status, _, body = await request(gw, "POST", "/basic/simpleenroll", b64(der), ALICE)
        assert status == 200, body
        retry = await gw.core.est.store.get_order(order_id_for("est:user:alice", der, first))
        assert retry is not None and retry.certificate_id is not None
