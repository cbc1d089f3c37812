"""External Account Binding (RFC 8555 §7.3.4): keys, their MAC check and what they allow.

An operator creates a key with ``acme-gateway eab create``; the client proves
it holds the key by a MAC over its account key in newAccount. The front end
checks the binding's wire form (HS* JWS, url, payload = the account key); this
module checks the MAC, the key's state, and binds the new account to the
profiles and domains the key allows (see :mod:`gateway.core.profiles`).

A single-use key moves ``active → used`` in the same store unit that inserts
the account, with a compare-and-set on ``active``: two clients racing with one
key cannot both get an account. The HMAC key is stored because verifying a MAC
needs it; it is shown once at creation and never logged or listed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace

from gateway import audit
from gateway.config import Settings
from gateway.errors import ErrorKind, GatewayError
from gateway.model.clock import Clock
from gateway.model.records import EabKey
from gateway.model.store import Insert, Op, Store, Update

ACTIVE, USED, REVOKED = "active", "used", "revoked"
MAC_ALGORITHMS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


@dataclass(frozen=True)
class EabProof:
    """What the client's binding JWS claims, already checked for wire form by the front end."""

    kid: str
    alg: str
    signing_input: bytes
    mac: bytes


def b64url(raw: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _hmac_bytes(key: EabKey) -> bytes:
    try:
        return base64.urlsafe_b64decode(key.hmac_key + "=" * (-len(key.hmac_key) % 4))
    except (binascii.Error, ValueError) as exc:  # only a hand-edited row gets here
        raise GatewayError(ErrorKind.SERVER_INTERNAL, f"EAB key {key.id!r} is corrupt") from exc


class EabService:
    """Creates, lists, revokes and verifies EAB keys."""

    def __init__(self, settings: Settings, store: Store, clock: Clock,
                 trail: audit.AuditTrail) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.trail = trail

    async def create(self, profiles: tuple[str, ...], allowed_domains: tuple[str, ...] = (),
                     reusable: bool = False, note: str = "", actor: str = "cli") -> EabKey:
        """A new key bound to ``profiles`` (all profiles when empty)."""
        unknown = [p for p in profiles if p not in self.settings.profiles]
        if unknown:
            raise GatewayError(ErrorKind.INVALID_PROFILE,
                               f"unknown profile {unknown[0]!r}; configured: "
                               f"{', '.join(sorted(self.settings.profiles))}")
        key = EabKey(id=f"kid-{secrets.token_urlsafe(12)}",
                     hmac_key=b64url(secrets.token_bytes(32)),
                     profiles=profiles, allowed_domains=allowed_domains, reusable=reusable,
                     created_at=self.clock.now(), note=note)
        await self.store.apply([Insert(key), self.trail.event(
            audit.EAB_CREATED, actor=actor, identifiers=allowed_domains,
            profile=",".join(profiles), request_id=key.id,
            extra={"reusable": reusable})])
        return key

    async def list_keys(self) -> list[EabKey]:
        """Every key (the caller must not print ``hmac_key``)."""
        return await self.store.list_eab_keys()

    async def revoke(self, kid: str, actor: str = "cli") -> EabKey:
        """Stop a key from binding any further account."""
        key = await self.store.get_eab_key(kid)
        if key is None:
            raise GatewayError(ErrorKind.NOT_FOUND, f"no EAB key with id {kid!r}")
        if key.status == REVOKED:
            return key
        revoked = replace(key, status=REVOKED)
        if not await self.store.apply([Update(revoked, expect=key.status), self.trail.event(
                audit.EAB_REVOKED, actor=actor, request_id=kid)]):
            return await self.revoke(kid, actor)
        return revoked

    async def verify(self, proof: EabProof, actor: str) -> tuple[EabKey, list[Op]]:
        """The key, if the MAC verifies and the key may bind; plus the ops that consume it."""
        key = await self.store.get_eab_key(proof.kid)
        try:
            usable = self._check(key, proof)
        except GatewayError as exc:
            await self.trail.record(audit.UNAUTHORIZED, actor=actor, result=exc.kind.value,
                                    detail=exc.detail, extra={"eab_kid": proof.kid})
            raise
        consumed = replace(usable, uses=usable.uses + 1,
                           status=ACTIVE if usable.reusable else USED)
        return usable, [Update(consumed, expect=ACTIVE)]

    def _check(self, key: EabKey | None, proof: EabProof) -> EabKey:
        if key is None:
            raise GatewayError(ErrorKind.UNAUTHORIZED,
                               f"externalAccountBinding: unknown key id {proof.kid!r}")
        digest = MAC_ALGORITHMS.get(proof.alg)
        if digest is None:
            raise GatewayError(ErrorKind.BAD_SIGNATURE_ALGORITHM,
                               f"externalAccountBinding: MAC algorithm {proof.alg!r} is not "
                               f"supported; use {', '.join(MAC_ALGORITHMS)}")
        expected = hmac.new(_hmac_bytes(key), proof.signing_input, digest).digest()
        if not hmac.compare_digest(expected, proof.mac):
            raise GatewayError(ErrorKind.UNAUTHORIZED,
                               f"externalAccountBinding: the MAC does not verify with key "
                               f"{proof.kid!r}; check the HMAC key (base64url)")
        if key.status == REVOKED:
            raise GatewayError(ErrorKind.UNAUTHORIZED,
                               f"externalAccountBinding: key {proof.kid!r} has been revoked")
        if key.status == USED:
            raise GatewayError(ErrorKind.UNAUTHORIZED,
                               f"externalAccountBinding: key {proof.kid!r} was single-use and "
                               "has already bound an account")
        return key

    async def binding(self, eab_kid: str | None) -> EabKey | None:
        """The key an account was bound with (its profile and domain limits), if any."""
        if eab_kid is None:
            return None
        return await self.store.get_eab_key(eab_kid)
