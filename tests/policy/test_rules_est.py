"""The same profile rules through the EST core refuse with the same reasons as ACME."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.core.est import EnrollRequest
from gateway.errors import GatewayError
from tests.policy.support import PolicyGateway, finalize, ready_order
from tests.policy.test_rules_acme import _csr, _p256


def _enroll(csr: bytes, profile: str, requester: str = "est:user:device1") -> EnrollRequest:
    # Bound to every name, so that the profile's rules alone decide.
    return EnrollRequest(requester=requester, profile=profile, csr_der=csr, wait_seconds=5.0,
                         allowed_names=("*",))


CASES = [
    ("strict", lambda: _csr(["a.example.org"], _p256())),
    ("strict", lambda: _csr(["*.example.com"], _p256())),
    ("strict", lambda: _csr(["a.example.com"], rsa.generate_private_key(65537, 2048))),
    ("strict", lambda: _csr(["a.example.com"], _p256())),
    ("bigrsa", lambda: _csr(["a.example.com"], rsa.generate_private_key(65537, 2048))),
    ("tls", lambda: _csr(["a.example.com"], _p256(), ekus=[ExtendedKeyUsageOID.CODE_SIGNING])),
    ("tls", lambda: _csr(["a.example.com"], _p256(), cn="a.example.com", sans=False)),
    ("default", lambda: _csr(["a.example.com"], _p256(), ca=True)),
]


@pytest.mark.parametrize(("profile", "make"), CASES)
async def test_est_refuses_with_the_acme_reason(pgw: PolicyGateway, profile: str,
                                                make: Any) -> None:
    csr = make()
    with pytest.raises(GatewayError) as est:
        await pgw.core.est.enroll(_enroll(csr, profile))
    c = await pgw.client()
    from gateway.core.csr import parse_csr

    names = sorted(i.value for i in parse_csr(csr).identifiers())
    resp, order = await c.post(c.directory["newOrder"], {
        "identifiers": [{"type": "dns", "value": n} for n in names], "profile": profile})
    if resp.status == 201:  # identifiers were fine for ACME too: the CSR is refused at finalize
        order = await ready_order(c, names, profile)
        resp, order = await finalize(c, order, csr)
    assert resp.status == 400
    assert order["detail"] == est.value.detail
    assert order["type"].endswith(est.value.kind.value)


async def test_est_key_reuse_refused_and_audited(pgw: PolicyGateway) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    first = await pgw.core.est.enroll(_enroll(_csr(["a.example.com"], key), "tls"))
    assert first.certificate_der is not None
    with pytest.raises(GatewayError) as refused:
        await pgw.core.est.enroll(_enroll(_csr(["b.example.com"], key), "tls"))
    assert "forbids key reuse" in refused.value.detail
    [event] = await pgw.audit("policy_refused")
    assert event["actor"] == "est:user:device1" and event["profile"] == "tls"
    assert event["detail"] == refused.value.detail
    [requested] = await pgw.audit("requested")
    assert requested["actor"] == "est:user:device1"


async def test_est_waits_for_approval(pgw: PolicyGateway) -> None:
    request = _enroll(_csr(["dev.example.com"], _p256()), "manual")
    held = await pgw.core.est.enroll(request)
    assert held.certificate_der is None  # the front end answers 202 + Retry-After
    [pending] = await pgw.core.approvals.pending()
    assert pending.id == held.order_id and pending.account_id == "est:user:device1"
    await pgw.core.approvals.approve(held.order_id, "cli:alice")
    for _ in range(100):
        again = await pgw.core.est.enroll(request)  # the device re-POSTs the same CSR
        if again.certificate_der is not None:
            break
        await asyncio.sleep(0.05)  # the device's Retry-After, shortened
    assert again.certificate_der is not None and again.order_id == held.order_id


async def test_est_repost_of_an_issued_csr_is_not_key_reuse(pgw: PolicyGateway) -> None:
    csr = _csr(["a.example.com"], ec.generate_private_key(ec.SECP256R1()))
    first = await pgw.core.est.enroll(_enroll(csr, "tls"))
    again = await pgw.core.est.enroll(_enroll(csr, "tls"))  # the device asks once more
    assert again.certificate_der == first.certificate_der is not None
    assert await pgw.audit("policy_refused") == []
