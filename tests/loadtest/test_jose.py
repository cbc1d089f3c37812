"""JWS signing and thumbprints, checked against josepy and cryptography verifiers."""

from __future__ import annotations

import hashlib
import hmac
import json

import josepy.jwk
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from loadtest.jose import AccountKey, b64url, b64url_decode, dns01_txt, eab_binding


def verify(key: AccountKey, body: bytes) -> tuple[dict[str, object], bytes]:
    """Verify a flattened JWS with the key's public half; returns (header, payload)."""
    jws = json.loads(body)
    assert set(jws) == {"protected", "payload", "signature"}
    signing_input = f"{jws['protected']}.{jws['payload']}".encode()
    signature = b64url_decode(jws["signature"])
    public = key.private.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        assert len(signature) == 64
        der = encode_dss_signature(int.from_bytes(signature[:32]), int.from_bytes(signature[32:]))
        public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    else:
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    return json.loads(b64url_decode(jws["protected"])), b64url_decode(jws["payload"])


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_thumbprint_matches_josepy(alg: str) -> None:
    key = AccountKey.generate(alg)
    pem = key.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    expected = josepy.jwk.JWK.load(pem).public_key().thumbprint()
    assert key.thumbprint == b64url(expected)


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_jws_with_jwk_verifies_and_carries_url_and_nonce(alg: str) -> None:
    key = AccountKey.generate(alg)
    header, payload = verify(key, key.jws("https://acme/new-acct", "n1", {"a": 1}))
    assert header == {"alg": alg, "nonce": "n1", "url": "https://acme/new-acct", "jwk": key.jwk}
    assert json.loads(payload) == {"a": 1}


def test_post_as_get_has_empty_payload_and_kid() -> None:
    key = AccountKey.generate()
    header, payload = verify(key, key.jws("https://acme/o/1", "n2", None, kid="https://acme/a/1"))
    assert payload == b"" and header["kid"] == "https://acme/a/1" and "jwk" not in header


def test_empty_object_payload_is_braces() -> None:
    key = AccountKey.generate()
    assert verify(key, key.jws("https://acme/c/1", "n3", {}, kid="k"))[1] == b"{}"


def test_unsupported_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        AccountKey.generate("HS256")


def test_dns01_value_is_sha256_of_key_authorization() -> None:
    assert dns01_txt("tok.thumb") == b64url(hashlib.sha256(b"tok.thumb").digest())


def test_eab_binding_is_hs256_over_the_jwk() -> None:
    key = AccountKey.generate()
    mac_key = b"0123456789abcdef0123456789abcdef"
    eab = eab_binding(key.jwk, "kid-1", b64url(mac_key), "https://acme/new-acct")
    header = json.loads(b64url_decode(eab["protected"]))
    assert header == {"alg": "HS256", "kid": "kid-1", "url": "https://acme/new-acct"}
    assert json.loads(b64url_decode(eab["payload"])) == key.jwk
    mac = hmac.new(mac_key, f"{eab['protected']}.{eab['payload']}".encode(), hashlib.sha256)
    assert b64url_decode(eab["signature"]) == mac.digest()


@pytest.mark.parametrize("kid", [None, 'https://acme/a/"1"'])
def test_protected_header_is_the_compact_json_of_its_members(kid: str | None) -> None:
    key = AccountKey.generate()
    body = key.jws('https://acme/o/1?x="y"', "n\\4\u00e9", None, kid=kid)
    header: dict[str, object] = {"alg": "ES256", "nonce": "n\\4\u00e9", "url": 'https://acme/o/1?x="y"'}
    header.update({"kid": kid} if kid else {"jwk": key.jwk})
    protected = json.loads(body)["protected"]
    assert b64url_decode(protected) == json.dumps(header, separators=(",", ":")).encode()
    verify(key, body)
