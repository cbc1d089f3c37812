"""Strict input through the HTTP front end: JSON rules, member types, POST-as-GET, names.

Each row is one rule; the problem type (and a word of the detail) is asserted,
so a relaxed rule fails here by name.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.acme.flow import issue
from tests.acme.support import Gateway
from tests.acme.test_bad_input import expect, raw_post
from tests.acmeclient import AcmeClient, b64, sign_raw


def signed_raw(c: AcmeClient, url: str, payload: bytes | None,
               protected: bytes | None = None) -> bytes:
    """A JWS whose payload (and protected header) are exactly the given bytes."""
    header = protected or json.dumps({"alg": "ES256", "kid": c.kid, "nonce": c.nonce,
                                      "url": url}).encode()
    return json.dumps(sign_raw(c.key, header, payload)).encode()


@pytest.mark.parametrize("body,reason", [
    (b"[" * 10_000, "nests deeper"),
    (b'{"protected":' * 5_000, "nests deeper"),
    ('{"protected":"","payload":"","signature":""}'.encode("utf-16"), "byte order mark"),
    ('{"protected":"","payload":"","signature":""}'.encode("utf-16-le"), "UTF-16"),
    (b'{"protected":"a","protected":"b","payload":"","signature":""}', "appears twice"),
    (b'{"protected":"\xc3","payload":"","signature":""}', "UTF-8"),
])
async def test_request_body_json_rules(gateway: Gateway, body: bytes, reason: str) -> None:
    c = await gateway.ready_client()
    resp, problem = await raw_post(c, c.directory["newOrder"], body)
    expect(resp, problem, 400, "malformed")
    assert reason in problem["detail"]


ORDER = b'{"identifiers":[{"type":"dns","value":"json.example.com"}]}'


@pytest.mark.parametrize("payload,reason", [
    (b'{"identifiers":[],"identifiers":[{"type":"dns","value":"a.example.com"}]}',
     "appears twice"),
    (b'{"identifiers":' + b"[" * 40 + b"]" * 40 + b"}", "nests deeper"),
    (ORDER.decode().encode("utf-16"), "byte order mark"),
    (ORDER.decode().encode("utf-32-le"), "UTF-16 or UTF-32"),
    (ORDER[:-1] + b',"notAfter":NaN}', "NaN"),
    (ORDER[:-1] + b',"x":1e999}', "too large"),
    (ORDER[:-1] + b',"x":"\\udfff"}', "surrogate"),
    (b"[" + ORDER + b"]", "must be a JSON object"),
    (b"", "POST-as-GET"),
])
async def test_payload_json_rules(gateway: Gateway, payload: bytes, reason: str) -> None:
    c = await gateway.ready_client()
    url = c.directory["newOrder"]
    resp, problem = await raw_post(c, url, signed_raw(c, url, payload))
    expect(resp, problem, 400, "malformed")
    assert reason in problem["detail"]


async def test_protected_header_with_a_duplicate_member(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    url = c.directory["newOrder"]
    header = (f'{{"alg":"ES256","kid":"{c.kid}","nonce":"{c.nonce}","url":"{url}",'
              f'"url":"{c.kid}"}}').encode()
    resp, problem = await raw_post(c, url, signed_raw(c, url, ORDER, header))
    expect(resp, problem, 400, "malformed")
    assert "'url' appears twice" in problem["detail"]


@pytest.mark.parametrize("payload,reason", [
    ({"termsOfServiceAgreed": "yes"}, "termsOfServiceAgreed must be a boolean"),
    ({"termsOfServiceAgreed": 1}, "termsOfServiceAgreed must be a boolean"),
    ({"termsOfServiceAgreed": "true"}, "termsOfServiceAgreed must be a boolean"),
    ({"termsOfServiceAgreed": True, "onlyReturnExisting": "yes"},
     "onlyReturnExisting must be a boolean"),
    ({"termsOfServiceAgreed": True, "onlyReturnExisting": 0},
     "onlyReturnExisting must be a boolean"),
    ({"termsOfServiceAgreed": True, "contact": "mailto:a@example.com"}, "contact must be a list"),
    ({"termsOfServiceAgreed": True, "externalAccountBinding": "x"}, "externalAccountBinding"),
])
async def test_new_account_member_types(gateway: Gateway, payload: dict[str, Any],
                                        reason: str) -> None:
    c = gateway.client()
    await c.start()
    resp, problem = await c.post(c.directory["newAccount"], payload, use_jwk=True)
    expect(resp, problem, 400, "malformed")
    assert reason in problem["detail"]


async def test_member_types_count_for_a_key_that_has_an_account(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    resp, problem = await c.post(c.directory["newAccount"], {"onlyReturnExisting": "true"},
                                 use_jwk=True)
    expect(resp, problem, 400, "malformed")


@pytest.mark.parametrize("extra,reason", [
    ({"notBefore": 1767225600}, "notBefore must be a string"),
    ({"notAfter": ["2027-01-01T00:00:00Z"]}, "notAfter must be a string"),
    ({"notAfter": "2027-01-01"}, "time zone"),
    ({"profile": 1}, "profile must be a string"),
    ({"profile": True}, "profile must be a string"),
    ({"identifiers": {"type": "dns", "value": "a.example.com"}}, "non-empty array"),
    ({"identifiers": [{"type": "dns", "value": 1}]}, "string type and value"),
])
async def test_new_order_member_types(gateway: Gateway, extra: dict[str, Any],
                                      reason: str) -> None:
    c = await gateway.ready_client()
    payload = {"identifiers": [{"type": "dns", "value": "types.example.com"}], **extra}
    resp, problem = await c.post(c.directory["newOrder"], payload)
    expect(resp, problem, 400, "malformed")
    assert reason in problem["detail"]


@pytest.mark.parametrize("payload,reason", [
    ({"status": True}, "status must be a string"),
    ({"status": "Deactivated"}, "deactivated"),
])
async def test_status_members_are_exact(gateway: Gateway, payload: dict[str, Any],
                                        reason: str) -> None:
    c = await gateway.ready_client()
    _, order = await c.new_order(["status.example.com"])
    for url in (c.kid, order["authorizations"][0]):
        resp, problem = await c.post(url, payload)
        expect(resp, problem, 400, "malformed")
        assert reason in problem["detail"]
    resp, account = await c.post(c.kid)
    assert account["status"] == "valid"


@pytest.mark.parametrize("reason", [True, "1", 1.0, [1]])
async def test_revocation_reason_must_be_an_integer(gateway: Gateway, reason: Any) -> None:
    c = await gateway.ready_client()
    _, done, _ = await issue(c, ["revoke-type.example.com"])
    _, pem = await c.post(done["certificate"])
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
    resp, problem = await c.post(c.directory["revokeCert"],
                                 {"certificate": b64(der), "reason": reason})
    expect(resp, problem, 400, "badRevocationReason")


async def test_post_as_get_resources_refuse_any_payload(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    order_url, done, _ = await issue(c, ["read.example.com"])
    for url in (order_url, done["certificate"], c.kid + "/orders"):
        for payload in ({}, {"status": "valid"}):
            resp, problem = await c.post(url, payload)
            expect(resp, problem, 400, "malformed")
            assert "POST-as-GET" in problem["detail"]
        resp, _ = await c.post(url)  # the empty payload reads it
        assert resp.status == 200


async def test_empty_object_stays_a_challenge_response_and_an_account_update(
        gateway: Gateway) -> None:
    c = await gateway.ready_client()
    _, order = await c.new_order(["chall.example.com"])
    _, authz = await c.post(order["authorizations"][0])
    resp, chall = await c.post(authz["challenges"][0]["url"], {})
    assert resp.status == 200, chall
    resp, account = await c.post(c.kid, {})
    assert resp.status == 200 and account["status"] == "valid"


@pytest.mark.parametrize("ident,kind,reason", [
    ({"type": "dns", "value": "a\n.example.test"}, "malformed", "'\\n'"),
    ({"type": "dns", "value": "a.example.test\n"}, "malformed", "'\\n'"),
    ({"type": "dns", "value": "example.com."}, "malformed", "trailing dot"),
    ({"type": "dns", "value": "b\u00fccher.example"}, "malformed", "A-labels"),
    ({"type": "dns", "value": "xn--zz.example"}, "malformed", "IDNA"),
    ({"type": "dns", "value": "ab--cd.example"}, "rejectedIdentifier", "positions 3-4"),
    ({"type": "dns", "value": "a" * 64 + ".example"}, "malformed", "63"),
    ({"type": "dns", "value": "example.123"}, "malformed", "all-numeric"),
    ({"type": "ip", "value": "127.000.0.1"}, "malformed", "not an IP address"),
    ({"type": "ip", "value": "::ffff:1.2.3.4"}, "malformed", "IPv4-mapped"),
    ({"type": "ip", "value": "fe80::1%eth0"}, "malformed", "zone index"),
    ({"type": "ip", "value": "2001:DB8::1"}, "malformed", "2001:db8::1"),
    ({"type": "DNS", "value": "a.example.com"}, "unsupportedIdentifier", "dns and ip"),
])
async def test_ill_formed_identifiers(gateway: Gateway, ident: dict[str, str], kind: str,
                                      reason: str) -> None:
    c = await gateway.ready_client()
    resp, problem = await c.post(c.directory["newOrder"], {"identifiers": [ident]})
    expect(resp, problem, 400, kind)
    assert reason in problem["detail"]
    assert problem["subproblems"][0]["identifier"] == ident


async def test_each_ill_formed_identifier_gets_its_subproblem(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    idents = [{"type": "dns", "value": "fine.example.com"},
              {"type": "dns", "value": "a\n.example.test"},
              {"type": "dns", "value": "trailing.example.com."},
              {"type": "ip", "value": "::ffff:1.2.3.4"}]
    resp, problem = await c.post(c.directory["newOrder"], {"identifiers": idents})
    expect(resp, problem, 400, "rejectedIdentifier")
    subs = problem["subproblems"]
    assert [s["identifier"] for s in subs] == idents[1:]
    assert {s["type"] for s in subs} == {"urn:ietf:params:acme:error:malformed"}


async def test_a_labels_are_accepted_in_lower_case(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    _, order = await c.new_order(["XN--BCHER-KVA.example.com"])
    assert order["identifiers"] == [{"type": "dns", "value": "xn--bcher-kva.example.com"}]


@pytest.mark.parametrize("jwk", [
    {"kty": "EC", "crv": "P-256", "x": 1, "y": 2},
    {"kty": "RSA", "n": ["AQAB"], "e": "AQAB"},
    {"kty": 7},
])
async def test_jwk_members_of_the_wrong_type(gateway: Gateway, jwk: dict[str, Any]) -> None:
    c = gateway.client()
    await c.start()
    for url in (c.directory["newAccount"], c.directory["revokeCert"]):
        resp, problem = await c.post(url, {}, use_jwk=True, protected={"jwk": jwk})
        expect(resp, problem, 400, "badPublicKey")
        assert "must be a string" in problem["detail"]
