"""The one JWS verifier every ACME POST goes through (RFC 8555 §6.2, RFC 7515).

Rules: flattened JSON serialization only; a protected header only (an
unprotected ``header`` member is refused, not merged); ``alg`` from an
allow-list (never ``none`` or an HMAC); exactly one of ``jwk`` and ``kid``;
``url`` equal to the request URL; a nonce redeemed once. Signatures are
checked with cryptography directly, on keys parsed once and cached.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import re
from functools import lru_cache
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from gateway.acme.jsonstrict import MAX_SIZE, loads_object
from gateway.core.keys import jwk_public_key
from gateway.errors import ErrorKind, GatewayError

ALGORITHMS = ("RS256", "ES256", "ES384", "ES512", "EdDSA")
# alg -> (the key's curve by name, the signature scheme, the size of r and of s)
# The digest is taken with hashlib and handed over Prehashed: cryptography would
# otherwise check the hash object against its ABC and make a Hash per request.
_EC = {"ES256": ("secp256r1", ec.ECDSA(Prehashed(hashes.SHA256())), 32, hashlib.sha256),
       "ES384": ("secp384r1", ec.ECDSA(Prehashed(hashes.SHA384())), 48, hashlib.sha384),
       "ES512": ("secp521r1", ec.ECDSA(Prehashed(hashes.SHA512())), 66, hashlib.sha512)}
_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()
MIN_RSA_BITS = 2048
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
# base64url -> the standard alphabet binascii decodes. '+', '/' and '=' map to a
# character strict mode rejects: base64url has none of them, and a JWS no padding.
_FROM_URLSAFE = bytes.maketrans(b"-_+/=", b"+/!!!")
_PADDING = (b"", b"===", b"==", b"=")  # by length % 4 (1 is never valid)
# A flattened JWS as clients write it: the three members in this order, no whitespace,
# base64url values. Such a body is read by slicing; any other spelling goes through
# the JSON decoder and its refusals.
_OPEN, _PAYLOAD, _SIGNATURE = b'{"protected":"', b'","payload":"', b'","signature":"'


def b64decode(value: Any, what: str) -> bytes:
    """Strict base64url without padding, as JWS requires."""
    if isinstance(value, str):
        # One C call for the usual, valid case; a failure finds its reason below.
        try:
            raw = value.encode("ascii").translate(_FROM_URLSAFE)
            return binascii.a2b_base64(raw + _PADDING[len(raw) % 4], strict_mode=True)
        except (UnicodeEncodeError, binascii.Error):
            pass
    if not isinstance(value, str) or not _B64URL.fullmatch(value):
        raise GatewayError(ErrorKind.MALFORMED, f"{what} is not base64url without padding")
    raise GatewayError(ErrorKind.MALFORMED, f"{what} is not valid base64url")


class Jws(NamedTuple):
    """A structurally valid flattened JWS whose signature is not yet checked.

    A NamedTuple rather than a frozen dataclass: one is made per request, and a
    frozen dataclass's __init__ sets each field through object.__setattr__.
    """

    header: dict[str, Any]
    payload: bytes
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        """The signature algorithm."""
        return str(self.header["alg"])

    @property
    def jwk(self) -> dict[str, Any] | None:
        """The embedded key, for newAccount and revocation by certificate key."""
        value = self.header.get("jwk")
        return value if isinstance(value, dict) else None

    @property
    def kid(self) -> str | None:
        """The account URL the request is signed for."""
        value = self.header.get("kid")
        return value if isinstance(value, str) else None

    @property
    def is_post_as_get(self) -> bool:
        """True for an empty payload (RFC 8555 §6.3)."""
        return self.payload == b""

    def json_payload(self) -> dict[str, Any]:
        """The payload as a JSON object (malformed if it is not one, or empty)."""
        if not self.payload:
            raise GatewayError(ErrorKind.MALFORMED,
                               "the JWS payload is empty (POST-as-GET); this request needs a "
                               "JSON object")
        return loads_object(self.payload, "the JWS payload")


def parse(body: bytes, *, inner: bool = False) -> Jws:
    """Parse a flattened JWS and check every rule that needs no key.

    ``inner`` is for the nested JWS of a key change (RFC 8555 §7.3.5), which
    carries a jwk and no nonce.
    """
    compact = _compact(body)
    if compact is None:
        return _parse_any(body, inner)
    raw_header, payload, signing_input, signature = compact
    header = loads_object(raw_header, "the protected header")
    _check_header(header, inner)
    return Jws(header, payload, signing_input, signature)


def _compact(body: bytes) -> tuple[bytes, bytes, bytes, bytes] | None:
    """The decoded protected header, payload, signing input and signature of a body in
    the compact form clients write; None for any other spelling.

    The slices are base64url (which holds no quote or escape) only if they decode, and
    then the body is the JSON object the strict decoder would return, with no member
    twice. Anything else, refusals included, is left to the decoder.
    """
    if not (body.startswith(_OPEN) and body.endswith(b'"}')) or len(body) > MAX_SIZE:
        return None
    payload_at = body.find(_PAYLOAD, len(_OPEN))
    signature_at = body.find(_SIGNATURE, payload_at + len(_PAYLOAD))
    if payload_at < 0 or signature_at < 0:
        return None
    protected = body[len(_OPEN):payload_at]
    payload = body[payload_at + len(_PAYLOAD):signature_at]
    signature = body[signature_at + len(_SIGNATURE):-2]
    a2b, table = binascii.a2b_base64, _FROM_URLSAFE
    try:
        return (a2b(protected.translate(table) + _PADDING[len(protected) % 4], strict_mode=True),
                a2b(payload.translate(table) + _PADDING[len(payload) % 4], strict_mode=True),
                protected + b"." + payload,
                a2b(signature.translate(table) + _PADDING[len(signature) % 4], strict_mode=True))
    except binascii.Error:  # a character outside base64url, or a length no base64 has
        return None


def _parse_any(body: bytes, inner: bool) -> Jws:
    """:func:`parse` for any spelling of the JSON object, by the strict decoder."""
    outer = loads_object(body, "the request body")
    if "signatures" in outer:
        raise GatewayError(ErrorKind.MALFORMED, "only the flattened JWS serialization is accepted")
    if "header" in outer:
        raise GatewayError(ErrorKind.MALFORMED, "unprotected JWS headers are not accepted")
    if set(outer) != {"protected", "payload", "signature"}:
        raise GatewayError(ErrorKind.MALFORMED,
                           "a JWS needs exactly protected, payload and signature members")
    protected, payload = outer["protected"], outer["payload"]
    header = loads_object(b64decode(protected, "protected"), "the protected header")
    _check_header(header, inner)
    return Jws(header=header, payload=b64decode(payload, "payload"),
               signing_input=f"{protected}.{payload}".encode(),
               signature=b64decode(outer["signature"], "signature"))


def _check_header(header: dict[str, Any], inner: bool) -> None:
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise GatewayError(ErrorKind.BAD_SIGNATURE_ALGORITHM,
                           f"JWS algorithm {alg!r} is not supported; use one of "
                           f"{', '.join(ALGORITHMS)}")
    if ("jwk" in header) == ("kid" in header):
        raise GatewayError(ErrorKind.MALFORMED,
                           "the protected header must contain exactly one of jwk and kid")
    if "jwk" in header and not isinstance(header["jwk"], dict):
        raise GatewayError(ErrorKind.MALFORMED, "jwk must be a JSON object")
    if "kid" in header and not isinstance(header["kid"], str):
        raise GatewayError(ErrorKind.MALFORMED, "kid must be a string")
    if not isinstance(header.get("url"), str):
        raise GatewayError(ErrorKind.MALFORMED, "the protected header must contain a url")
    if inner:
        if "nonce" in header:
            raise GatewayError(ErrorKind.MALFORMED,
                               "the inner key-change JWS must not have a nonce")
    elif not isinstance(header.get("nonce"), str):
        raise GatewayError(ErrorKind.BAD_NONCE, "JWS has no anti-replay nonce")
    crit = header.get("crit")
    if crit is not None:
        raise GatewayError(ErrorKind.MALFORMED, "no critical JWS header extension is supported")


@lru_cache(maxsize=4096)
def _cached_key(jwk_json: str) -> PublicKeyTypes:
    return jwk_public_key(json.loads(jwk_json))


def public_key(jwk: dict[str, Any]) -> PublicKeyTypes:
    """A JWK parsed into a public key (cached: accounts sign many requests)."""
    if "d" in jwk or "p" in jwk or "k" in jwk:
        raise GatewayError(ErrorKind.BAD_PUBLIC_KEY, "the JWK must be a public key")
    key = _cached_key(json.dumps(jwk, sort_keys=True))
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise GatewayError(ErrorKind.BAD_PUBLIC_KEY,
                           f"RSA account keys need at least {MIN_RSA_BITS} bits")
    return key


_BY_THUMBPRINT: dict[str, PublicKeyTypes] = {}
_BY_THUMBPRINT_SIZE = 4096


def account_public_key(thumbprint: str, jwk: dict[str, Any]) -> PublicKeyTypes:
    """An account's key, found by its RFC 7638 thumbprint (a SHA-256 of the key itself).

    Cheaper than :func:`public_key`, whose cache key is the JWK re-serialized.
    """
    key = _BY_THUMBPRINT.get(thumbprint)
    if key is None:
        key = public_key(jwk)
        if len(_BY_THUMBPRINT) >= _BY_THUMBPRINT_SIZE:
            del _BY_THUMBPRINT[next(iter(_BY_THUMBPRINT))]
        _BY_THUMBPRINT[thumbprint] = key
    return key


def verify(jws: Jws, key: PublicKeyTypes) -> None:
    """Check the signature with ``key``; malformed if it does not verify."""
    try:
        _verify(jws.alg, key, jws.signature, jws.signing_input)
    except InvalidSignature:
        raise GatewayError(ErrorKind.MALFORMED, "JWS signature is invalid") from None


def _verify(alg: str, key: PublicKeyTypes, sig: bytes, data: bytes) -> None:
    family = _family(key)
    if alg == "RS256":
        if family is not rsa.RSAPublicKey:
            raise _mismatch(alg)
        rsa_key: rsa.RSAPublicKey = key  # type: ignore[assignment]  # its family, checked
        rsa_key.verify(sig, data, _PKCS1, _SHA256)
    elif alg in _EC:
        curve, ecdsa, size, digest = _EC[alg]
        ec_key: ec.EllipticCurvePublicKey = key  # type: ignore[assignment]  # checked next
        if family is not ec.EllipticCurvePublicKey or ec_key.curve.name != curve:
            raise _mismatch(alg)
        if len(sig) != 2 * size:
            raise InvalidSignature()
        ec_key.verify(_der_signature(sig[:size], sig[size:]), digest(data).digest(), ecdsa)
    elif alg == "EdDSA":
        if family is not ed25519.Ed25519PublicKey:
            raise _mismatch(alg)
        ed_key: ed25519.Ed25519PublicKey = key  # type: ignore[assignment]  # its family
        ed_key.verify(sig, data)


def _der_signature(r: bytes, s: bytes) -> bytes:
    """JWS's fixed-size r || s as the DER ECDSA-Sig-Value cryptography verifies (RFC 3279).

    ``encode_dss_signature`` does the same from two ints, at more cost than the
    int conversions it needs; each INTEGER here is minimal and non-negative.
    """
    r, s = _der_integer(r), _der_integer(s)
    body = b"\x02%c%s\x02%c%s" % (len(r), r, len(s), s)
    if len(body) < 0x80:
        return b"0%c%s" % (len(body), body)
    return b"0\x81%c%s" % (len(body), body)  # P-521: up to 2 * (2 + 67) bytes


def _der_integer(value: bytes) -> bytes:
    value = value.lstrip(b"\0") or b"\0"
    return b"\0" + value if value[0] & 0x80 else value


_FAMILIES = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)
_FAMILY_OF: dict[type, type | None] = {}


def _family(key: PublicKeyTypes) -> type | None:
    """The key's abstract type among :data:`_FAMILIES`, found once per concrete class.

    isinstance against an ABC runs ABCMeta.__instancecheck__, a Python call, on
    every request; the concrete classes are few (cryptography's Rust key types).
    """
    kind = type(key)
    try:
        return _FAMILY_OF[kind]
    except KeyError:
        family = next((f for f in _FAMILIES if isinstance(key, f)), None)
        _FAMILY_OF[kind] = family
        return family


def _mismatch(alg: str) -> GatewayError:
    return GatewayError(ErrorKind.BAD_SIGNATURE_ALGORITHM,
                        f"JWS algorithm {alg} does not match the key type")
