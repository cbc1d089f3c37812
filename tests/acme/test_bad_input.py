"""Every malformed or forbidden request gets the right problem document, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.acme.flow import validate_all
from tests.acme.support import Gateway
from tests.acmeclient import AcmeClient, b64, jwk_of, make_csr, sign

ACME = "urn:ietf:params:acme:error:"


def expect(resp: Any, body: Any, status: int, kind: str) -> None:
    assert resp.status == status, body
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert body["type"] == ACME + kind, body
    assert body["detail"]
    assert "Replay-Nonce" in resp.headers


async def raw_post(c: AcmeClient, url: str, data: bytes,
                   content_type: str = "application/jose+json") -> tuple[Any, Any]:
    resp = await c.session.post(url, data=data, headers={"Content-Type": content_type})
    return resp, await resp.json(content_type=None)


async def test_malformed_json_body(gateway: Gateway) -> None:
    c = gateway.client()
    await c.start()
    expect(*await raw_post(c, c.directory["newAccount"], b"{not json"), 400, "malformed")


async def test_wrong_content_type(gateway: Gateway) -> None:
    c = gateway.client()
    await c.start()
    resp, body = await raw_post(c, c.directory["newAccount"], b"{}", "application/json")
    expect(resp, body, 415, "malformed")


@pytest.mark.parametrize("alg", ["none", "HS256", "RS1", None])
async def test_forbidden_algorithms(gateway: Gateway, alg: str | None) -> None:
    c = gateway.client()
    await c.start()
    resp, body = await c.post(c.directory["newAccount"], {}, use_jwk=True,
                              protected={"alg": alg})
    expect(resp, body, 400, "badSignatureAlgorithm")
    assert "ES256" in body["algorithms"]


async def test_jwk_and_kid_together(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    resp, body = await c.post(c.directory["newOrder"], {}, protected={"jwk": jwk_of(c.key)})
    expect(resp, body, 400, "malformed")


async def test_kid_where_jwk_is_required(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    resp, body = await c.post(c.directory["newAccount"], {})
    expect(resp, body, 400, "malformed")


async def test_url_mismatch(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    resp, body = await c.post(c.directory["newOrder"], {}, protected={"url": c.kid})
    expect(resp, body, 403, "unauthorized")


async def test_replayed_and_unknown_nonces(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    used = c.nonce
    await c.post(c.kid)
    resp, body = await c.post(c.kid, protected={"nonce": used})
    expect(resp, body, 400, "badNonce")
    resp, body = await c.post(c.kid, protected={"nonce": "bm90LWEtbm9uY2U"})
    expect(resp, body, 400, "badNonce")


async def test_unprotected_header_is_refused(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    jws = sign(c.key, {"alg": "ES256", "kid": c.kid, "nonce": c.nonce, "url": c.kid}, None)
    jws["header"] = {"kid": c.kid}  # type: ignore[assignment]
    expect(*await raw_post(c, c.kid, json.dumps(jws).encode()), 400, "malformed")


async def test_bad_signature(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    jws = sign(c.key, {"alg": "ES256", "kid": c.kid, "nonce": c.nonce, "url": c.kid}, None)
    jws["signature"] = b64(b"\x01" * 64)
    expect(*await raw_post(c, c.kid, json.dumps(jws).encode()), 400, "malformed")


async def test_unknown_account(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    c.kid = c.kid.rsplit("/", 1)[0] + "/doesnotexist"
    resp, body = await c.post(c.directory["newOrder"], {"identifiers": []})
    expect(resp, body, 400, "accountDoesNotExist")


async def test_small_rsa_account_key(gateway: Gateway) -> None:
    c = gateway.client()
    c.key = rsa.generate_private_key(65537, 1024)
    await c.start()
    resp, body = await c.post(c.directory["newAccount"], {}, use_jwk=True)
    expect(resp, body, 400, "badPublicKey")


@pytest.mark.parametrize("contact,kind", [
    (["tel:+123"], "unsupportedContact"),
    (["mailto:not-an-address"], "invalidContact"),
    ("mailto:a@example.com", "malformed"),
])
async def test_bad_contacts(gateway: Gateway, contact: Any, kind: str) -> None:
    c = gateway.client()
    await c.start()
    resp, body = await c.post(c.directory["newAccount"], {"contact": contact}, use_jwk=True)
    expect(resp, body, 400, kind)


@pytest.mark.parametrize("identifiers,kind", [
    ([], "malformed"),
    ([{"type": "email", "value": "a@example.com"}], "unsupportedIdentifier"),
    ([{"type": "dns", "value": "bad..name"}], "malformed"),
    ([{"type": "dns", "value": "a.*.example.com"}], "malformed"),
    ([{"type": "dns", "value": "localhost"}], "rejectedIdentifier"),
    ([{"type": "ip", "value": "300.1.1.1"}], "malformed"),
    ("example.com", "malformed"),
])
async def test_bad_identifiers(gateway: Gateway, identifiers: Any, kind: str) -> None:
    c = await gateway.ready_client()
    resp, body = await c.post(c.directory["newOrder"], {"identifiers": identifiers})
    expect(resp, body, 400, kind)


async def test_several_bad_identifiers_give_subproblems(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    idents = [{"type": "dns", "value": "ok.example.com"}, {"type": "dns", "value": "bad..x"},
              {"type": "ip", "value": "nope"}]
    resp, body = await c.post(c.directory["newOrder"], {"identifiers": idents})
    assert resp.status == 400
    assert [s["identifier"]["value"] for s in body["subproblems"]] == ["bad..x", "nope"]
    _, listing = await c.post((await c.post(c.kid))[1]["orders"])
    assert listing["orders"] == []  # nothing half-written


async def test_unknown_profile(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    resp, body = await c.post(c.directory["newOrder"], {
        "identifiers": [{"type": "dns", "value": "a.example.com"}], "profile": "nope"})
    expect(resp, body, 400, "invalidProfile")


async def finalize_with(gateway: Gateway, names: list[str], csr: bytes | str,
                        validate: bool = True) -> tuple[Any, Any]:
    c = await gateway.ready_client()
    _, order = await c.new_order(names)
    if validate:
        await validate_all(c, order)
    payload = {"csr": csr if isinstance(csr, str) else b64(csr)}
    return await c.post(order["finalize"], payload)


async def test_finalize_before_ready(gateway: Gateway) -> None:
    csr, _ = make_csr(["p.example.com"])
    resp, body = await finalize_with(gateway, ["p.example.com"], csr, validate=False)
    expect(resp, body, 403, "orderNotReady")


async def test_garbage_csr(gateway: Gateway) -> None:
    resp, body = await finalize_with(gateway, ["g.example.com"], b"garbage")
    expect(resp, body, 400, "badCSR")


async def test_csr_not_base64url(gateway: Gateway) -> None:
    resp, body = await finalize_with(gateway, ["g.example.com"], "***")
    expect(resp, body, 400, "malformed")


async def test_csr_with_extra_name(gateway: Gateway) -> None:
    csr, _ = make_csr(["m.example.com", "evil.example.com"])
    resp, body = await finalize_with(gateway, ["m.example.com"], csr)
    expect(resp, body, 400, "badCSR")
    assert "evil.example.com" in body["detail"]


async def test_csr_missing_a_name(gateway: Gateway) -> None:
    csr, _ = make_csr(["m.example.com"])
    resp, body = await finalize_with(gateway, ["m.example.com", "n.example.com"], csr)
    expect(resp, body, 400, "badCSR")


async def test_csr_with_small_rsa_key(gateway: Gateway) -> None:
    csr, _ = make_csr(["k.example.com"], key=rsa.generate_private_key(65537, 1024))
    resp, body = await finalize_with(gateway, ["k.example.com"], csr)
    expect(resp, body, 400, "badPublicKey")


async def test_csr_with_unsupported_curve(gateway: Gateway) -> None:
    csr, _ = make_csr(["k.example.com"], key=ec.generate_private_key(ec.SECP521R1()))
    resp, body = await finalize_with(gateway, ["k.example.com"], csr)
    expect(resp, body, 400, "badPublicKey")


async def test_csr_with_account_key(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    _, order = await c.new_order(["same.example.com"])
    await validate_all(c, order)
    csr, _ = make_csr(["same.example.com"], key=c.key)
    resp, body = await c.post(order["finalize"], {"csr": b64(csr)})
    expect(resp, body, 400, "badCSR")


async def test_csr_cn_counts_as_identifier(gateway: Gateway) -> None:
    csr, _ = make_csr(["cn.example.com"], cn="other.example.com")
    resp, body = await finalize_with(gateway, ["cn.example.com"], csr)
    expect(resp, body, 400, "badCSR")


async def test_other_accounts_resources_are_unauthorized(gateway: Gateway) -> None:
    owner = await gateway.ready_client()
    order_url, order = await owner.new_order(["mine.example.com"])
    thief = await gateway.ready_client()
    expect(*await thief.post(order_url), 403, "unauthorized")
    expect(*await thief.post(order["authorizations"][0]), 403, "unauthorized")
    expect(*await thief.post(owner.kid), 403, "unauthorized")


async def test_unknown_resources_are_404_problems(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    base = c.kid.split("/acme/")[0]
    expect(*await c.post(base + "/acme/order/unknown"), 404, "malformed")
    resp = await c.session.get(base + "/acme/no-such-thing")
    assert resp.status == 404
    assert (await resp.json(content_type=None))["type"] == ACME + "malformed"


async def test_get_on_a_post_resource(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    resp = await c.session.get(c.directory["newOrder"])
    assert resp.status == 405
