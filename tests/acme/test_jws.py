"""The JWS verifier's rules, without HTTP."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from gateway.acme import jws
from gateway.errors import ErrorKind, GatewayError
from tests.acmeclient import b64, jwk_of, sign


def body(protected: dict, payload: bytes | None = b"{}", key=None) -> bytes:  # type: ignore[no-untyped-def,type-arg]
    key = key or ec.generate_private_key(ec.SECP256R1())
    return json.dumps(sign(key, protected, payload)).encode()


HEADER = {"alg": "ES256", "nonce": "n", "url": "https://gw/acme/x", "kid": "https://gw/acct/1"}


@pytest.mark.parametrize("raw,kind", [
    (b"[]", ErrorKind.MALFORMED),
    (b'{"protected":"e30","payload":"","signature":"","extra":1}', ErrorKind.MALFORMED),
    (b'{"signatures":[],"payload":""}', ErrorKind.MALFORMED),
    (b'{"protected":"!!","payload":"","signature":""}', ErrorKind.MALFORMED),
    (b'{"protected":"W10","payload":"","signature":""}', ErrorKind.MALFORMED),
])
def test_structure(raw: bytes, kind: ErrorKind) -> None:
    with pytest.raises(GatewayError) as err:
        jws.parse(raw)
    assert err.value.kind is kind


@pytest.mark.parametrize("change,kind", [
    ({"alg": "none"}, ErrorKind.BAD_SIGNATURE_ALGORITHM),
    ({"alg": "HS256"}, ErrorKind.BAD_SIGNATURE_ALGORITHM),
    ({"jwk": {"kty": "EC"}}, ErrorKind.MALFORMED),
    ({"kid": None}, ErrorKind.MALFORMED),
    ({"url": None}, ErrorKind.MALFORMED),
    ({"nonce": None}, ErrorKind.BAD_NONCE),
    ({"crit": ["b64"]}, ErrorKind.MALFORMED),
])
def test_header_rules(change: dict, kind: ErrorKind) -> None:  # type: ignore[type-arg]
    header = {k: v for k, v in {**HEADER, **change}.items() if v is not None}
    with pytest.raises(GatewayError) as err:
        jws.parse(body(header))
    assert err.value.kind is kind


def test_inner_jws_must_not_carry_a_nonce() -> None:
    with pytest.raises(GatewayError):
        jws.parse(body(HEADER), inner=True)


@pytest.mark.parametrize("make,alg", [
    (lambda: ec.generate_private_key(ec.SECP256R1()), "ES256"),
    (lambda: rsa.generate_private_key(65537, 2048), "RS256"),
])
def test_signatures_verify_and_tampering_fails(make, alg: str) -> None:  # type: ignore[no-untyped-def]
    key = make()
    parsed = jws.parse(body({**HEADER, "alg": alg}, key=key))
    jws.verify(parsed, jws.public_key(jwk_of(key)))
    forged = jws.Jws(parsed.header, parsed.payload, parsed.signing_input + b"x", parsed.signature)
    with pytest.raises(GatewayError) as err:
        jws.verify(forged, jws.public_key(jwk_of(key)))
    assert err.value.kind is ErrorKind.MALFORMED


def test_algorithm_must_match_key_type() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    parsed = jws.parse(body({**HEADER, "alg": "ES384"}, key=key))
    with pytest.raises(GatewayError) as err:
        jws.verify(parsed, jws.public_key(jwk_of(key)))
    assert err.value.kind is ErrorKind.BAD_SIGNATURE_ALGORITHM


def test_private_jwk_is_refused() -> None:
    with pytest.raises(GatewayError) as err:
        jws.public_key({"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"})
    assert err.value.kind is ErrorKind.BAD_PUBLIC_KEY


def test_b64decode_is_strict() -> None:
    assert jws.b64decode(b64(b"\xff\xfe"), "x") == b"\xff\xfe"
    for bad in ("a=", "a+b", "a/b", 3):
        with pytest.raises(GatewayError):
            jws.b64decode(bad, "x")


@pytest.mark.parametrize("value,decoded", [
    ("", b""), ("AQ", b"\x01"), ("AQI", b"\x01\x02"), ("AQID", b"\x01\x02\x03"),
    ("-_-_", b"\xfb\xff\xbf"), ("AR", b"\x01"),  # spare bits set: accepted, as before
])
def test_b64decode_accepts_base64url_without_padding(value: str, decoded: bytes) -> None:
    assert jws.b64decode(value, "x") == decoded


@pytest.mark.parametrize("value,reason", [
    ("AQ==", "without padding"), ("AQ=", "without padding"), ("=AQ", "without padding"),
    ("+/8", "without padding"), ("A Q", "without padding"), ("AQ\n", "without padding"),
    ("\u00e9A", "without padding"), ("\u0661\u0662", "without padding"), (None, "without padding"),
    (b"AQ", "without padding"), ("A", "not valid base64url"), ("AQIDB", "not valid base64url"),
])
def test_b64decode_refuses_with_a_reason(value: object, reason: str) -> None:
    with pytest.raises(GatewayError) as err:
        jws.b64decode(value, "the signature")
    assert err.value.kind is ErrorKind.MALFORMED
    assert err.value.detail.startswith("the signature ") and reason in err.value.detail


def test_eddsa_signature_verifies() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    data = b"p.q"
    parsed = jws.Jws({"alg": "EdDSA"}, b"", data, key.sign(data))
    jws.verify(parsed, key.public_key())


def test_account_key_by_thumbprint_verifies_and_small_rsa_is_still_refused() -> None:
    from gateway.core.keys import jwk_thumbprint

    key = ec.generate_private_key(ec.SECP256R1())
    jwk = jwk_of(key)
    parsed = jws.parse(body(HEADER, key=key))
    for _ in range(2):  # parsed once, then found by thumbprint
        jws.verify(parsed, jws.account_public_key(jwk_thumbprint(jwk), jwk))
    small = jwk_of(rsa.generate_private_key(65537, 1024))
    with pytest.raises(GatewayError) as err:
        jws.account_public_key(jwk_thumbprint(small), small)
    assert err.value.kind is ErrorKind.BAD_PUBLIC_KEY


def _spellings(members: dict[str, str]) -> list[bytes]:
    """The compact spelling clients send (read by one match) and one the decoder reads."""
    return [json.dumps(members, separators=(",", ":")).encode(), json.dumps(members).encode()]


@pytest.mark.parametrize("member", ["protected", "payload", "signature"])
def test_a_member_of_impossible_length_is_refused_in_every_spelling(member: str) -> None:
    members = {"protected": b64(json.dumps(HEADER).encode()), "payload": "", "signature": "AQID"}
    members[member] = "AQIDB"  # 5 characters: no base64 text has that length
    details = set()
    for raw in _spellings(members):
        with pytest.raises(GatewayError) as err:
            jws.parse(raw)
        assert err.value.kind is ErrorKind.MALFORMED
        details.add(err.value.detail)
    assert details == {f"{member} is not valid base64url"}


def test_every_spelling_of_one_jws_parses_to_the_same_request() -> None:
    members = sign(ec.generate_private_key(ec.SECP256R1()), HEADER, b'{"a":1}')
    compact, spaced = (jws.parse(raw) for raw in _spellings(members))
    assert compact == spaced
    assert compact.signing_input == f"{members['protected']}.{members['payload']}".encode()
    reordered = json.dumps({k: members[k] for k in ("signature", "payload", "protected")},
                           separators=(",", ":")).encode()
    assert jws.parse(reordered) == compact


@pytest.mark.parametrize("raw", [
    b'{"protected":"e30","payload":"","signature":"","protected":"e30"}',
    b'{"protected":"e30","protected":"e30","payload":"","signature":""}',
    b'{"protected":"e30","payload":"","signature":"","header":{}}',
])
def test_a_compact_body_with_more_members_is_refused(raw: bytes) -> None:
    with pytest.raises(GatewayError) as err:
        jws.parse(raw)
    assert err.value.kind is ErrorKind.MALFORMED


@pytest.mark.parametrize("size", [32, 48, 66])
def test_raw_signatures_become_the_der_that_cryptography_writes(size: int) -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    edges = [b"\0" * size, b"\0" * (size - 1) + b"\x01", b"\x7f" + b"\xff" * (size - 1),
             b"\x80" + b"\0" * (size - 1), b"\0\x80" + b"\0" * (size - 2), b"\xff" * size]
    for r in edges:
        for s in edges:
            expected = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
            assert jws._der_signature(r, s) == expected


@pytest.mark.parametrize("curve,alg,hash_,size", [
    (ec.SECP256R1(), "ES256", hashes.SHA256(), 32), (ec.SECP384R1(), "ES384", hashes.SHA384(), 48),
    (ec.SECP521R1(), "ES512", hashes.SHA512(), 66),
])
def test_every_ecdsa_algorithm_verifies_and_refuses_a_changed_input(  # type: ignore[no-untyped-def]
        curve, alg: str, hash_, size: int) -> None:
    key = ec.generate_private_key(curve)
    public = jws.public_key(jwk_of(key))
    for n in range(8):  # signatures whose r or s start with a high bit or a zero byte
        data = b"header.payload%d" % n
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hash_)))
        parsed = jws.Jws({"alg": alg}, b"", data, r.to_bytes(size, "big") + s.to_bytes(size, "big"))
        jws.verify(parsed, public)
        with pytest.raises(GatewayError):
            jws.verify(parsed._replace(signing_input=data + b"x"), public)
