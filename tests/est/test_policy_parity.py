"""One policy for both front ends: EST refuses a forbidden name with ACME's words, and audits it."""

from __future__ import annotations

import pytest

from gateway.acme.requests import new_order
from gateway.errors import GatewayError
from gateway.model.records import Account
from tests.acmeclient import jwk_of, thumbprint
from tests.est.support import PASSWORD, Gateway, b64, ec_key, make_csr, request


def _account() -> Account:
    """An ACME account with a real key (newOrder judges the account's key)."""
    key = ec_key()
    return Account(id="acct-1", thumbprint=thumbprint(key), jwk=jwk_of(key))


@pytest.mark.parametrize("kind,name", [("dns", "www.evil.org"), ("ip", "192.0.2.7")])
async def test_same_refusal_text_through_acme_and_est(gw: Gateway, kind: str, name: str) -> None:
    with pytest.raises(GatewayError) as acme:
        await gw.core.orders.new_order(_account(), new_order({
            "profile": "routers", "identifiers": [{"type": kind, "value": name}]}))
    status, _, body = await request(gw, "POST", "/basic/simpleenroll",
                                    b64(make_csr(ec_key(), cn=name)), ("alice", PASSWORD))
    assert status == 400
    assert body.decode().strip() == acme.value.detail


async def test_est_refusal_is_audited_with_the_est_requester(gw: Gateway) -> None:
    await request(gw, "POST", "/basic/simpleenroll",
                  b64(make_csr(ec_key(), cn="www.evil.org")), ("alice", PASSWORD))
    rows = await gw.core.est.store.audit_rows(0, 100)  # type: ignore[attr-defined]
    refused = [r for r in rows if r["event"] == "policy_refused"]
    assert refused and refused[-1]["actor"] == "est:user:alice"


async def test_refused_credentials_are_audited_without_the_password(gw: Gateway) -> None:
    csr = b64(make_csr(ec_key()))
    await request(gw, "POST", "/basic/simpleenroll", csr)  # the usual first 401: not audited
    await request(gw, "POST", "/basic/simpleenroll", csr, ("alice", "guess-1"))
    await request(gw, "POST", "/basic/simpleenroll", csr, ("bob", "bobs pw"))
    rows = await gw.core.est.store.audit_rows(0, 100)  # type: ignore[attr-defined]
    refused = [(r["actor"], r["detail"]) for r in rows if r["event"] == "unauthorized"]
    assert refused == [
        ("est:user:alice", "label 'basic': wrong user name or password"),
        ("est:user:bob", "label 'basic': user 'bob' may not enroll through label 'basic'")]
    assert not any("guess-1" in str(r) for r in rows)


ILL_FORMED = ["a\n.example.net", "router.example.net.", "ab--c.example.net", "xn--zz.example.net",
              "router.example.net\x00"]


# cryptography builds dNSName SANs of ASCII only: a non-ASCII name is tried in the CN.
@pytest.mark.parametrize("where,name", [("cn", "r\u00f6uter.example.net"),
                                        *(("cn", n) for n in ILL_FORMED),
                                        *(("san", n) for n in ILL_FORMED)])
async def test_ill_formed_names_are_refused_as_acme_refuses_them(
        gw: Gateway, name: str, where: str) -> None:
    with pytest.raises(GatewayError) as acme:
        await gw.core.orders.new_order(_account(), new_order({
            "profile": "routers", "identifiers": [{"type": "dns", "value": name}]}))
    csr = make_csr(ec_key(), cn=name) if where == "cn" else \
        make_csr(ec_key(), cn=None, sans=("ok.example.net", name))
    status, _, body = await request(gw, "POST", "/basic/simpleenroll", b64(csr),
                                    ("alice", PASSWORD))
    assert status == 400, body
    assert body.decode().strip() == " ".join(acme.value.detail.split())
