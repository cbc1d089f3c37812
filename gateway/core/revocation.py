"""Revocation, whoever asks: an ACME client (RFC 8555 §7.6: the owning account's key or
the certificate's own key) or an operator (console, admin API, CLI).

The CA revokes first; only then is the certificate recorded as revoked here.
A CA that cannot revoke through its connector (AD CS via certsrv) is a refusal
the client can act on — ``userActionRequired`` (403), never a 5xx that reads
as "try again later" — and an operator task that tells a person where to revoke
it (:mod:`gateway.core.tasks`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cryptography import x509

from connectors.base import (
    AlreadyRevoked,
    Connector,
    ConnectorError,
    RevocationReason,
    RevocationUnsupported,
)
from gateway import audit
from gateway.core.keys import jwk_public_key, spki_sha256
from gateway.core.tasks import OperatorTasks
from gateway.errors import ErrorKind, GatewayError
from gateway.model.clock import Clock
from gateway.model.records import Account, Certificate
from gateway.model.store import Store, Update

# RFC 5280 reason names as operators type them, and their CRLReason codes: the set RFC
# 8555 §7.6 lets a client ask for serves operators too.
REASON_NAMES = {"unspecified": 0, "keyCompromise": 1, "affiliationChanged": 3,
                "superseded": 4, "cessationOfOperation": 5, "privilegeWithdrawn": 9}
ALLOWED_REASONS = frozenset(REASON_NAMES.values())


def reason_code(reason: object, by_name: bool = False) -> int:
    """A CRLReason code from a code (or, ``by_name``, an RFC 5280 name); None: unspecified."""
    if reason is None:
        return 0
    if by_name and isinstance(reason, str) and reason in REASON_NAMES:
        return REASON_NAMES[reason]
    if isinstance(reason, int) and not isinstance(reason, bool) and reason in ALLOWED_REASONS:
        return reason
    raise GatewayError(ErrorKind.BAD_REVOCATION_REASON,
                       f"reason {reason!r} is not allowed; use one of "
                       f"{sorted(ALLOWED_REASONS)}"
                       + (f" or {', '.join(REASON_NAMES)}" if by_name else ""))


def serial_hex(cert: x509.Certificate) -> str:
    """The serial number as lower-case hex, the form used for lookups."""
    return format(cert.serial_number, "x")


class RevocationService:
    """Revokes at the CA, records it, and hands what the CA cannot do to an operator."""

    def __init__(self, store: Store, clock: Clock, connectors: Mapping[str, Connector],
                 trail: audit.AuditTrail, tasks: OperatorTasks) -> None:
        self.store = store
        self.clock = clock
        self.connectors = connectors
        self.trail = trail
        self.tasks = tasks

    async def revoke(self, cert_der: bytes, reason: Any, account: Account | None,
                     jwk: dict[str, Any] | None) -> Certificate:
        """Revoke by the owning account's key or by the certificate's own key (§7.6)."""
        code = reason_code(reason)
        cert = await self._issued_here(cert_der)
        actor = audit.acme_actor(account.id) if account is not None else "certificate-key"
        await self._check_revoker(cert, account, jwk)
        return await self.revoke_certificate(cert, code, actor)

    async def revoke_certificate(self, cert: Certificate, code: int, actor: str) -> Certificate:
        """Revoke ``cert`` at its CA and record it; the caller has checked that ``actor`` may."""
        if cert.revoked_at is not None:
            raise GatewayError(ErrorKind.ALREADY_REVOKED, "the certificate is already revoked")
        connector = self.connectors.get(cert.ca)
        if connector is None:
            raise GatewayError(ErrorKind.USER_ACTION_REQUIRED, f"CA {cert.ca!r} is no longer "
                               "configured; revoke the certificate at the CA itself")
        try:
            await connector.revoke(cert.leaf_der, RevocationReason(code))
        except AlreadyRevoked:
            pass  # the CA knew already; record it here too
        except RevocationUnsupported as exc:
            await self._hand_to_operator(cert, code, actor, exc)
        except ConnectorError as exc:
            raise GatewayError(ErrorKind.CA_UNAVAILABLE, f"the CA could not revoke: {exc}",
                               retry_after=30) from exc
        revoked = replace(cert, revoked_at=self.clock.now(), revocation_reason=code)
        await self.store.apply([Update(revoked), self.trail.event(
            audit.REVOKED, actor=actor, ca=cert.ca, request_id=cert.order_id,
            extra={"serial": cert.serial, "reason": code})])
        return revoked

    async def _issued_here(self, cert_der: bytes) -> Certificate:
        try:
            leaf = x509.load_der_x509_certificate(cert_der)
        except ValueError as exc:
            raise GatewayError(ErrorKind.MALFORMED, "certificate is not a DER X.509 "
                               "certificate") from exc
        cert = await self.store.get_certificate_by_serial(serial_hex(leaf))
        if cert is None or cert.leaf_der != cert_der:
            raise GatewayError(ErrorKind.NOT_FOUND, "this certificate was not issued here")
        return cert

    async def _check_revoker(self, cert: Certificate, account: Account | None,
                             jwk: dict[str, Any] | None) -> None:
        if account is not None and account.id == cert.account_id:
            return
        leaf = x509.load_der_x509_certificate(cert.leaf_der)
        if jwk is not None and spki_sha256(jwk_public_key(jwk)) == spki_sha256(leaf.public_key()):
            return
        exc = GatewayError(ErrorKind.UNAUTHORIZED,
                           "only the account that ordered the certificate, or the holder of "
                           "its private key, may revoke it")
        await self.trail.record(
            audit.UNAUTHORIZED, actor=audit.acme_actor(account.id) if account else "jwk",
            ca=cert.ca, result=exc.kind.value, detail=exc.detail, request_id=cert.order_id,
            extra={"serial": cert.serial})
        raise exc

    async def _hand_to_operator(self, cert: Certificate, code: int, actor: str,
                                exc: RevocationUnsupported) -> None:
        """Open (or find) the operator task, and refuse with where the revocation happens."""
        instructions = (f"revoke serial {cert.serial} (reason {code}) at CA {cert.ca!r}: {exc}; "
                        f"then run `acme-gateway tasks done TASK`")
        task = await self.tasks.revocation_task(ca=cert.ca, serial=cert.serial, reason=code,
                                                certificate_id=cert.id,
                                                instructions=instructions, actor=actor)
        raise GatewayError(
            ErrorKind.USER_ACTION_REQUIRED,
            f"CA {cert.ca!r} cannot revoke through this gateway: {exc}. The request is "
            f"recorded as operator task {task.id}; the certificate counts as revoked once an "
            "operator has revoked it at the CA") from exc

