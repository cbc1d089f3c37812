"""A CA that defers: 202 + Retry-After, the device re-POSTs the same CSR, one certificate."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from connectors.base import (
    Issued,
    IssueRequest,
    IssueResult,
    Pending,
    Rejected,
    RevocationReason,
)
from tests.est.support import (
    DER,
    PASSWORD,
    Manufacturer,
    b64,
    certs_of,
    ec_key,
    est_section,
    make_csr,
    request,
    running_gateway,
)

ALICE = ("alice", PASSWORD)


class DeferringCA:
    """Answers Pending to issue, then Issued on the ``polls_until_issued``-th poll.

    ``reject`` makes it refuse instead.
    """

    def __init__(self, polls_until_issued: int = 1, reject: str = "") -> None:
        self.name = "slow"
        self.polls_until_issued = polls_until_issued
        self.reject = reject
        self.issue_calls = 0
        self.polls = 0
        self.key = ec_key()
        self.ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Deferring CA")])
        self.requests: dict[str, IssueRequest] = {}

    async def issue(self, request: IssueRequest) -> IssueResult:
        self.issue_calls += 1
        self.requests[request.request_id] = request
        return Pending(ref=request.request_id, retry_after=0.05, message="waiting for officer")

    async def poll(self, ref: str) -> IssueResult:
        self.polls += 1
        if self.reject:
            return Rejected(self.reject)
        if self.polls < self.polls_until_issued:
            return Pending(ref=ref, retry_after=0.05)
        return Issued(self._sign(self.requests[ref]))

    def _sign(self, request: IssueRequest) -> bytes:
        csr = x509.load_der_x509_csr(request.csr_der)
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(self.ca_name)
                .public_key(csr.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now).not_valid_after(now + timedelta(days=1))
                .sign(self.key, hashes.SHA256()))
        return cert.public_bytes(DER)

    async def revoke(self, cert_der: bytes, reason: RevocationReason) -> None:
        return None

    async def ca_certs(self) -> tuple[bytes, ...]:
        return ()

    async def check(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


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
    ca = DeferringCA(polls_until_issued=2)
    est = est_section(Manufacturer(tmp_path).ca_file, enroll_wait_seconds=0.2)
    async with running_gateway(tmp_path, est, slow=ca) as gw:
        csr = b64(make_csr(ec_key()))
        status, headers, body = await request(gw, "POST", "/slow/simpleenroll", csr, ALICE)
        assert status == 202 and headers["Retry-After"] == "1"
        assert int(headers["Content-Length"]) == len(body)
        status, body = await _until_not_202(gw, csr)
        assert status == 200, body
        (leaf,) = certs_of(body)
        assert leaf.issuer == ca.ca_name
        # Answered again from the store, never issued twice.
        status, _, again = await request(gw, "POST", "/slow/simpleenroll", csr, ALICE)
        assert status == 200 and certs_of(again)[0] == leaf
        assert ca.issue_calls == 1


async def test_concurrent_reposts_make_one_order(tmp_path: Path) -> None:
    ca = DeferringCA(polls_until_issued=3)
    est = est_section(Manufacturer(tmp_path).ca_file, enroll_wait_seconds=0.0)
    async with running_gateway(tmp_path, est, slow=ca) as gw:
        csr = b64(make_csr(ec_key()))
        answers = await asyncio.gather(*(request(gw, "POST", "/slow/simpleenroll", csr, ALICE)
                                         for _ in range(6)))
        assert {a[0] for a in answers} == {202}
        status, _ = await _until_not_202(gw, csr)
        assert status == 200 and ca.issue_calls == 1


async def test_refusal_is_reported_on_repost(tmp_path: Path) -> None:
    ca = DeferringCA(reject="denied by officer")
    est = est_section(Manufacturer(tmp_path).ca_file, enroll_wait_seconds=0.0)
    async with running_gateway(tmp_path, est, slow=ca) as gw:
        csr = b64(make_csr(ec_key()))
        status, body = await _until_not_202(gw, csr)
        assert status == 403 and b"denied by officer" in body
        status, _, body = await request(gw, "POST", "/slow/simpleenroll", csr, ALICE)
        assert status == 403 and b"denied by officer" in body
        assert ca.issue_calls == 1


async def test_order_failed_for_unreachable_ca_is_retried_once(tmp_path: Path) -> None:
    from gateway.core.est import order_id_for
    from gateway.core.models import INVALID, Order
    from gateway.storage.base import Insert

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
