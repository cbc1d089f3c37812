"""Every profile rule through ACME: a problem document naming the rule, and an audit event."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.acme.support import eventually
from tests.acmeclient import make_csr
from tests.policy.support import PolicyGateway, finalize, new_order, ready_order

ACME = "urn:ietf:params:acme:error:"

ORDER_CASES = [
    # (profile, identifiers, error type, words the detail must contain)
    ("nosuch", ["a.example.com"], "invalidProfile", "unknown profile 'nosuch'"),
    ("strict", ["a.example.org"], "rejectedIdentifier",
     "matches none of the allowed patterns of profile 'strict'"),
    ("strict", ["*.example.com"], "rejectedIdentifier",
     "is a wildcard, which profile 'strict' does not allow"),
    ("strict", ["ip:192.0.2.7"], "rejectedIdentifier",
     "is an IP address, which profile 'strict' does not allow"),
    ("strict", ["a.example.com", "b.example.com", "c.example.com"], "rejectedIdentifier",
     "3 identifiers exceed the maximum of 2 of profile 'strict'"),
]


@pytest.mark.parametrize(("profile", "names", "kind", "words"), ORDER_CASES)
async def test_new_order_refusals(pgw: PolicyGateway, profile: str, names: list[str], kind: str,
                                  words: str) -> None:
    c = await pgw.client()
    resp, body = await new_order(c, names, profile)
    assert resp.status == 400
    assert body["type"] == ACME + kind
    assert words in body["detail"]
    [event] = await pgw.audit("policy_refused")
    assert event["detail"] == body["detail"]
    assert event["result"] == kind and event["profile"] == profile
    assert event["actor"] == "acme:" + c.kid.rsplit("/", 1)[1]  # type: ignore[union-attr]
    assert event["source"] == "127.0.0.1" and event["request_id"]


async def test_regex_pattern_admits_matching_names(pgw: PolicyGateway) -> None:
    c = await pgw.client()
    resp, body = await new_order(c, ["host42.corp.test"], "strict")
    assert resp.status == 201, body
    assert body["profile"] == "strict"
    [event] = await pgw.audit("requested")
    assert event["identifiers"] == '["host42.corp.test"]' and event["ca"] == "local"


def _csr(names: list[str], key: Any, ekus: list[x509.ObjectIdentifier] | None = None,
         cn: str | None = None, sans: bool = True, ca: bool = False) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _p256() -> Any:
    return ec.generate_private_key(ec.SECP256R1())


CSR_CASES = [
    # (profile, csr maker, error type, words)
    ("strict", lambda n: _csr(n, rsa.generate_private_key(65537, 2048)), "badPublicKey",
     "RSA keys are not allowed by this profile"),
    ("strict", lambda n: _csr(n, _p256()), "badPublicKey",
     "EC key of 256 bits is too small; profile 'strict' requires at least 384"),
    ("bigrsa", lambda n: _csr(n, rsa.generate_private_key(65537, 2048)), "badPublicKey",
     "RSA key of 2048 bits is too small; the minimum is 3072"),
    ("tls", lambda n: _csr(n, _p256(), ekus=[ExtendedKeyUsageOID.CODE_SIGNING]), "badCSR",
     "asks for extended key usage 1.3.6.1.5.5.7.3.3, which profile 'tls' does not grant"),
    ("tls", lambda n: _csr(n, _p256(), cn=n[0], sans=False), "badCSR",
     "profile 'tls' follows RFC 2818: the CSR must list its names in a subjectAltName"),
    ("default", lambda n: _csr(n, _p256(), ca=True), "badCSR",
     "the CSR asks for a CA certificate"),
]


@pytest.mark.parametrize(("profile", "make", "kind", "words"), CSR_CASES)
async def test_finalize_refusals(pgw: PolicyGateway, profile: str, make: Any, kind: str,
                                 words: str) -> None:
    c = await pgw.client()
    names = ["a.example.com"]
    order = await ready_order(c, names, profile)
    resp, body = await finalize(c, order, make(names))
    assert resp.status == 400, body
    assert body["type"] == ACME + kind
    assert words in body["detail"]
    [event] = await pgw.audit("policy_refused")
    assert event["detail"] == body["detail"] and event["profile"] == profile
    assert event["request_id"] == order["url"].rsplit("/", 1)[1]


async def test_key_reuse_refused_where_forbidden(pgw: PolicyGateway) -> None:
    c = await pgw.client()
    key = _p256()
    first = await ready_order(c, ["a.example.com"], "tls")
    resp, body = await finalize(c, first, make_csr(["a.example.com"], key)[0])
    assert resp.status == 200 and body["status"] == "valid", body
    second = await ready_order(c, ["a.example.com"], "tls")
    resp, body = await finalize(c, second, make_csr(["a.example.com"], key)[0])
    assert resp.status == 400 and body["type"] == ACME + "badPublicKey"
    assert "forbids key reuse" in body["detail"]
    # The default profile allows reuse: the same key is certified again.
    third = await ready_order(c, ["a.example.com"], "default")
    resp, body = await finalize(c, third, make_csr(["a.example.com"], key)[0])
    assert resp.status == 200 and body["status"] == "valid", body


async def test_cn_from_first_san_and_audit_of_issuance(pgw: PolicyGateway) -> None:
    c = await pgw.client()
    order = await ready_order(c, ["b.example.com", "a.example.com"], "tls")
    resp, body = await finalize(c, order, make_csr(["a.example.com", "b.example.com"])[0])
    assert body["status"] == "valid", body
    _, pem = await c.post(body["certificate"])
    leaf = x509.load_pem_x509_certificate(pem.encode())
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "b.example.com"
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    events = [e["event"] for e in await pgw.audit()]
    assert events == ["account_created", "requested", "validated", "validated", "issued"]
    [issued] = await pgw.audit("issued")
    assert issued["profile"] == "tls" and issued["ca"] == "local" and '"validity_days":90' in \
        issued["extra"].replace(".0", "")


async def test_failed_validation_is_audited(pgw: PolicyGateway) -> None:
    from gateway.errors import ErrorKind
    from gateway.validation import ValidationFailure

    pgw.validator.failure = ValidationFailure(ErrorKind.INCORRECT_RESPONSE, "wrong token")
    c = await pgw.client()
    resp, order = await new_order(c, ["a.example.com"])
    _, authz = await c.post(order["authorizations"][0])
    await c.post(authz["challenges"][0]["url"], {})

    async def audited() -> bool:
        return bool(await pgw.audit("validated"))

    await eventually(audited)
    [event] = await pgw.audit("validated")
    assert event["result"] == "incorrectResponse" and event["detail"] == "wrong token"


async def test_revocation_and_a_strangers_attempt_are_audited(pgw: PolicyGateway) -> None:
    from tests.acmeclient import b64

    c = await pgw.client()
    order = await ready_order(c, ["r.example.com"], "default")
    _, done = await finalize(c, order, make_csr(["r.example.com"])[0])
    _, pem = await c.post(done["certificate"])
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    stranger = await pgw.client()
    resp, _ = await stranger.post(c.directory["revokeCert"], {"certificate": b64(der)})
    assert resp.status == 403
    resp, _ = await c.post(c.directory["revokeCert"], {"certificate": b64(der), "reason": 1})
    assert resp.status == 200
    [attempt] = await pgw.audit("unauthorized")
    assert attempt["actor"] == "acme:" + stranger.kid.rsplit("/", 1)[1]  # type: ignore[union-attr]
    assert "only the account that ordered the certificate" in attempt["detail"]
    [revoked] = await pgw.audit("revoked")
    assert revoked["actor"] == "acme:" + c.kid.rsplit("/", 1)[1]  # type: ignore[union-attr]
    assert '"reason":1' in revoked["extra"]
