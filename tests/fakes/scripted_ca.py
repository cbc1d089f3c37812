"""A scripted CA connector: each issue/poll call takes the next step of a script."""

from __future__ import annotations

from cryptography.hazmat.primitives.serialization import Encoding

from connectors.base import (
    CAConfigError,
    CAUnavailable,
    Issued,
    IssueRequest,
    IssueResult,
    Pending,
    Rejected,
    RevocationReason,
)
from tests.fakes.pki import MiniCA


class ScriptedCA:
    """Steps: "fail" (CAUnavailable), "misconfigured" (CAConfigError), "pending", "reject",
    "issue"; the last step repeats."""

    def __init__(self, *steps: str, name: str = "local",
                 retry_after: float | None = None,
                 reason: str = "denied by CA policy module") -> None:
        self.name = name
        self.reason = reason
        self.retry_after = retry_after
        self.steps = list(steps) or ["issue"]
        self.ca = MiniCA("Scripted")
        self.issue_calls: list[str] = []
        self.poll_calls: list[str] = []
        self._requests: dict[str, IssueRequest] = {}

    def _step(self, request: IssueRequest) -> IssueResult:
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if step == "fail":
            raise CAUnavailable("the CA is down for maintenance")
        if step == "misconfigured":
            raise CAConfigError("unknown certificate profile 'NOPE'")
        if step == "pending":
            return Pending(ref=request.request_id, retry_after=self.retry_after,
                           message="waiting for a CA officer")
        if step == "reject":
            return Rejected(self.reason)
        cert = self.ca.issue(request.csr_der, days=request.profile.validity.days)
        return Issued(cert.public_bytes(Encoding.DER), self.ca.chain_der)

    async def issue(self, request: IssueRequest) -> IssueResult:
        self.issue_calls.append(request.request_id)
        self._requests[request.request_id] = request
        return self._step(request)

    async def poll(self, ref: str) -> IssueResult:
        self.poll_calls.append(ref)
        return self._step(self._requests[ref])

    async def revoke(self, cert_der: bytes, reason: RevocationReason) -> None:
        return None

    async def ca_certs(self) -> tuple[bytes, ...]:
        return self.ca.chain_der

    async def check(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
