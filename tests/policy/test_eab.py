"""External Account Binding through ACME: MAC, single use, revocation, profile and domain limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from gateway.app import create_app
from gateway.model.records import EabKey
from tests.acme.support import FakeValidator, make_settings
from tests.acmeclient import AcmeClient, b64, jwk_of
from tests.policy.support import PROFILES, PolicyGateway, new_order

ACME = "urn:ietf:params:acme:error:"


@pytest.fixture
async def egw(aiohttp_client: Any, tmp_path: Any) -> PolicyGateway:
    """A gateway that requires an external account binding."""
    settings = make_settings(tmp_path, profiles=PROFILES,
                             acme={"external_account_required": True})
    app = create_app(settings, validator=FakeValidator())
    return PolicyGateway(await aiohttp_client(app), FakeValidator())


def binding(key: EabKey, c: AcmeClient, *, mac_key: bytes | None = None,
            url: str | None = None, jwk: dict[str, Any] | None = None,
            alg: str = "HS256") -> dict[str, str]:
    """The externalAccountBinding JWS a client builds (RFC 8555 §7.3.4)."""
    protected = b64(json.dumps({"alg": alg, "kid": key.id,
                                "url": url or c.directory["newAccount"]}).encode())
    payload = b64(json.dumps(jwk or jwk_of(c.key)).encode())
    secret = mac_key or base64.urlsafe_b64decode(key.hmac_key + "==")
    mac = hmac.new(secret, f"{protected}.{payload}".encode(), hashlib.sha256).digest()
    return {"protected": protected, "payload": payload, "signature": b64(mac)}


async def register(gw: PolicyGateway, eab: dict[str, str] | None,
                   c: AcmeClient | None = None) -> tuple[AcmeClient, Any, Any]:
    c = c or AcmeClient(gw.http.session, str(gw.http.make_url("/acme/directory")))
    if not c.directory:
        await c.start()
    payload: dict[str, Any] = {"termsOfServiceAgreed": True}
    if eab is not None:
        payload["externalAccountBinding"] = eab
    resp, body = await c.post(c.directory["newAccount"], payload, use_jwk=True)
    if resp.status in (200, 201):
        c.kid = resp.headers["Location"]
    return c, resp, body


async def fresh(gw: PolicyGateway) -> AcmeClient:
    c = AcmeClient(gw.http.session, str(gw.http.make_url("/acme/directory")))
    await c.start()
    return c


async def test_directory_announces_the_requirement(egw: PolicyGateway) -> None:
    c = await fresh(egw)
    assert c.directory["meta"]["externalAccountRequired"] is True


async def test_account_without_binding_is_refused(egw: PolicyGateway) -> None:
    _, resp, body = await register(egw, None)
    assert body["type"] == ACME + "externalAccountRequired"
    assert "acme-gateway eab create" in body["detail"]
    [event] = await egw.audit("unauthorized")
    assert event["result"] == "externalAccountRequired"
    assert event["actor"].startswith("jwk:")  # no account exists: the key that asked


async def test_single_use_key_binds_one_account(egw: PolicyGateway) -> None:
    key = await egw.core.eab.create(("tls",))
    c = await fresh(egw)
    c, resp, body = await register(egw, binding(key, c), c)
    assert resp.status == 201, body
    again = await fresh(egw)
    _, resp, body = await register(egw, binding(key, again), again)
    assert resp.status == 403 and body["type"] == ACME + "unauthorized"
    assert "single-use and has already bound an account" in body["detail"]
    [stored] = await egw.core.eab.list_keys()
    assert stored.status == "used" and stored.uses == 1
    created = await egw.audit("account_created")
    assert json.loads(created[0]["extra"]) == {"eab_kid": key.id}


async def test_reusable_key_binds_several_accounts(egw: PolicyGateway) -> None:
    key = await egw.core.eab.create((), reusable=True)
    for _ in range(2):
        c = await fresh(egw)
        _, resp, body = await register(egw, binding(key, c), c)
        assert resp.status == 201, body
    [stored] = await egw.core.eab.list_keys()
    assert stored.status == "active" and stored.uses == 2


async def test_bad_bindings(egw: PolicyGateway) -> None:
    key = await egw.core.eab.create(("tls",))
    c = await fresh(egw)
    cases = [
        (binding(key, c, mac_key=b"wrong" * 8), "unauthorized", "the MAC does not verify"),
        ({**binding(key, c), "protected": b64(json.dumps(
            {"alg": "HS256", "kid": "kid-nope", "url": c.directory["newAccount"]}).encode())},
         "unauthorized", "unknown key id 'kid-nope'"),
        (binding(key, c, url="https://elsewhere/new-account"), "malformed",
         "its url must equal the newAccount URL"),
        (binding(key, c, jwk=jwk_of(AcmeClient(None, "").key)), "malformed",
         "its payload must be the account key"),
        (binding(key, c, alg="RS256"), "badSignatureAlgorithm", "is not a MAC"),
    ]
    for eab, kind, words in cases:
        _, resp, body = await register(egw, eab, c)
        assert body["type"] == ACME + kind, body
        assert words in body["detail"]
    assert len(await egw.audit("unauthorized")) == 2  # the MAC and the unknown key id
    [stored] = await egw.core.eab.list_keys()
    assert stored.status == "active"  # failed attempts do not use the key up


async def test_revoked_key_binds_nothing_and_stops_bound_accounts(egw: PolicyGateway) -> None:
    key = await egw.core.eab.create((), reusable=True)
    c = await fresh(egw)
    c, resp, _ = await register(egw, binding(key, c), c)
    assert resp.status == 201
    await egw.core.eab.revoke(key.id)
    other = await fresh(egw)
    _, resp, body = await register(egw, binding(key, other), other)
    assert body["type"] == ACME + "unauthorized" and "has been revoked" in body["detail"]
    resp, body = await new_order(c, ["a.example.com"])
    assert body["type"] == ACME + "unauthorized" and "has been revoked" in body["detail"]


async def test_binding_limits_profiles_and_domains(egw: PolicyGateway) -> None:
    key = await egw.core.eab.create(("tls", "strict"), allowed_domains=("*.example.com",))
    c = await fresh(egw)
    c, resp, _ = await register(egw, binding(key, c), c)
    resp, body = await new_order(c, ["a.example.com"])  # no profile: the key's first one
    assert resp.status == 201 and body["profile"] == "tls", body
    resp, body = await new_order(c, ["a.example.com"], "default")
    assert body["type"] == ACME + "invalidProfile"
    assert f"profile 'default' is not allowed for this account; its external account key " \
           f"{key.id!r} allows: tls, strict" == body["detail"]
    resp, body = await new_order(c, ["a.example.org"], "tls")
    assert body["type"] == ACME + "rejectedIdentifier"
    assert "is not among the domains allowed to external account key" in body["detail"]
    refused = await egw.audit("policy_refused")
    assert [e["result"] for e in refused] == ["invalidProfile", "rejectedIdentifier"]


async def test_unknown_profile_for_a_new_key_is_refused(egw: PolicyGateway) -> None:
    from gateway.errors import GatewayError

    with pytest.raises(GatewayError, match="unknown profile 'nope'"):
        await egw.core.eab.create(("nope",))
