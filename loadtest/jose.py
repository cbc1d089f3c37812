"""Account keys, JWK thumbprints and flattened JWS, signed directly with cryptography.

The load generator signs every ACME request, so the signing path stays lean:
no josepy objects in the loop, one compact JSON encoding, protected header only
(RFC 8555 §6.2 forbids the unprotected header anyway).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ACCOUNT_ALGS = ("ES256", "RS256")
_ES256 = ec.ECDSA(hashes.SHA256())


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# Built once: json.dumps with separators builds a new encoder on every call.
_COMPACT = json.JSONEncoder(separators=(",", ":")).encode


def compact_json(value: Any) -> bytes:
    """JSON without whitespace: the bytes that get signed and sent."""
    return _COMPACT(value).encode()


def _uint(value: int, size: int) -> str:
    return b64url(value.to_bytes(size, "big"))


class AccountKey:
    """An ACME account key pair: its public JWK, its thumbprint and a JWS signer."""

    def __init__(self, private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
        self.private = private
        if isinstance(private, ec.EllipticCurvePrivateKey):
            if not isinstance(private.curve, ec.SECP256R1):
                raise ValueError("only P-256 EC account keys are supported (ES256)")
            self.alg = "ES256"
            numbers = private.public_key().public_numbers()
            # RFC 7638 member order: crv, kty, x, y (lexicographic).
            self.jwk = {
                "crv": "P-256",
                "kty": "EC",
                "x": _uint(numbers.x, 32),
                "y": _uint(numbers.y, 32),
            }
        else:
            self.alg = "RS256"
            pub = private.public_key().public_numbers()
            size = (pub.e.bit_length() + 7) // 8
            self.jwk = {
                "e": _uint(pub.e, size),
                "kty": "RSA",
                "n": _uint(pub.n, (pub.n.bit_length() + 7) // 8),
            }
        self.thumbprint = b64url(hashlib.sha256(compact_json(self.jwk)).digest())
        # The protected header is assembled from fixed pieces around the JSON-escaped
        # nonce, url and kid: encoding a fresh dict per request was ~7 us of every JWS.
        self._header_start = f'{{"alg":"{self.alg}","nonce":'
        self._jwk_member = ',"jwk":' + _COMPACT(self.jwk) + "}"

    @classmethod
    def generate(cls, alg: str = "ES256") -> AccountKey:
        """A fresh key for ``alg`` (ES256: P-256, RS256: RSA-2048 as certbot uses)."""
        if alg == "ES256":
            return cls(ec.generate_private_key(ec.SECP256R1()))
        if alg == "RS256":
            return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        raise ValueError(f"unsupported account key algorithm {alg!r}; use one of {ACCOUNT_ALGS}")

    def sign(self, data: bytes) -> bytes:
        """The raw JWS signature over ``data`` (r||s for ECDSA, RFC 7518 §3.4)."""
        if isinstance(self.private, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(self.private.sign(data, _ES256))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def jws(self, url: str, nonce: str, payload: Any | None, kid: str | None = None) -> bytes:
        """A flattened JWS body; ``payload=None`` makes a POST-as-GET (empty payload)."""
        # Member order as a dict would give: alg, nonce, url, then kid or jwk.
        owner = f',"kid":{_COMPACT(kid)}}}' if kid else self._jwk_member
        header = f"{self._header_start}{_COMPACT(nonce)},\"url\":{_COMPACT(url)}{owner}"
        protected = b64url(header.encode())
        body = "" if payload is None else b64url(compact_json(payload))
        signature = b64url(self.sign(f"{protected}.{body}".encode("ascii")))
        # base64url needs no JSON escaping: the envelope is plain concatenation.
        return (
            f'{{"protected":"{protected}","payload":"{body}","signature":"{signature}"}}'
        ).encode("ascii")

    def key_authorization(self, token: str) -> str:
        """``token.thumbprint`` (RFC 8555 §8.1)."""
        return f"{token}.{self.thumbprint}"


def dns01_txt(key_authorization: str) -> str:
    """The TXT record value for a DNS-01 challenge (RFC 8555 §8.4)."""
    return b64url(hashlib.sha256(key_authorization.encode("ascii")).digest())


def eab_binding(jwk: dict[str, str], kid: str, hmac_key_b64url: str, url: str) -> dict[str, str]:
    """The externalAccountBinding object: an HS256 JWS over the account JWK (RFC 8555 §7.3.4)."""
    protected = b64url(compact_json({"alg": "HS256", "kid": kid, "url": url}))
    payload = b64url(compact_json(jwk))
    mac = hmac.new(
        b64url_decode(hmac_key_b64url), f"{protected}.{payload}".encode(), hashlib.sha256
    )
    return {"protected": protected, "payload": payload, "signature": b64url(mac.digest())}
