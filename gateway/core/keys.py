"""Public-key helpers the core needs: JWK → key, SPKI hashes, thumbprints, weak keys."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

import josepy
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from josepy.jwk import JWK

from gateway.core import goodkey
from gateway.errors import ErrorKind, GatewayError

T = TypeVar("T")
ACCOUNT_KEY = "the account key"
# The members a public JWK is built from (RFC 7518 §6): each a JSON string.
_KEY_MEMBERS = ("kty", "crv", "x", "y", "n", "e")


def _load(jwk: dict[str, Any]) -> Any:
    """josepy's JWK, after the checks josepy leaves to chance (it calls .encode on members)."""
    mistyped = next((m for m in _KEY_MEMBERS if m in jwk and not isinstance(jwk[m], str)), None)
    if mistyped is not None:
        raise GatewayError(ErrorKind.BAD_PUBLIC_KEY,
                           f"the JWK cannot be used: member {mistyped} must be a string")
    return JWK.from_json(jwk)


def jwk_public_key(jwk: dict[str, Any]) -> PublicKeyTypes:
    """The cryptography public key of a JWK dict (badPublicKey if it does not parse)."""
    try:
        key = _load(jwk).key
    except (josepy.errors.DeserializationError, ValueError, TypeError, KeyError) as exc:
        raise GatewayError(ErrorKind.BAD_PUBLIC_KEY, f"the JWK cannot be used: {exc}") from exc
    # josepy wraps keys in comparable proxies; the signature code wants the real object.
    return getattr(key, "_wrapped", key)  # type: ignore[no-any-return]


def spki_sha256(key: PublicKeyTypes) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo: a stable key identity across formats."""
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


_SPKI_BY_THUMBPRINT: dict[str, str] = {}
_WEAKNESS_BY_THUMBPRINT: dict[str, str | None] = {}
_THUMBPRINT_CACHE_SIZE = 4096


def _by_thumbprint(cache: dict[str, T], thumbprint: str, make: Callable[[], T]) -> T:
    """``make()``, remembered under an RFC 7638 thumbprint (a hash of the key itself)."""
    if thumbprint in cache:
        return cache[thumbprint]
    found = make()
    if len(cache) >= _THUMBPRINT_CACHE_SIZE:
        del cache[next(iter(cache))]
    cache[thumbprint] = found
    return found


def account_key_spki(thumbprint: str, jwk: dict[str, Any]) -> str:
    """:func:`spki_sha256` of an account's JWK, cached by its RFC 7638 thumbprint.

    Every finalize compares the CSR's key with the account's; building the key
    and its DER encoding each time costs an EC point conversion. The thumbprint
    is a hash of the key itself, so it names one key.
    """
    return _by_thumbprint(_SPKI_BY_THUMBPRINT, thumbprint,
                          lambda: spki_sha256(jwk_public_key(jwk)))


def check_account_key(jwk: dict[str, Any]) -> None:
    """Refuse a weak account key (badPublicKey naming the weakness)."""
    goodkey.check_public_key(jwk_public_key(jwk), ACCOUNT_KEY)


def account_key_weakness(thumbprint: str, jwk: dict[str, Any]) -> str | None:
    """Why an account's key is weak, or None; cached by thumbprint, as it is asked per order."""
    return _by_thumbprint(_WEAKNESS_BY_THUMBPRINT, thumbprint,
                          lambda: goodkey.key_weakness(jwk_public_key(jwk)))


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url without padding)."""
    try:
        return josepy.json_util.encode_b64jose(_load(jwk).thumbprint())
    except (josepy.errors.DeserializationError, ValueError, TypeError, KeyError) as exc:
        raise GatewayError(ErrorKind.BAD_PUBLIC_KEY, f"the JWK cannot be used: {exc}") from exc
