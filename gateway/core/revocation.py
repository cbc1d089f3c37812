"""Revoking an issued certificate at its CA, whoever asked (ACME client or operator).

The caller decides who may revoke; this module makes the CA call, maps its
errors, and records the revocation with its audit event in one unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from connectors.base import (
    AlreadyRevoked,
    Connector,
    ConnectorError,
    RevocationReason,
    RevocationUnsupported,
)
from gateway import audit
from gateway.core.clock import Clock
from gateway.core.models import Certificate
from gateway.errors import ErrorKind, GatewayError
from gateway.storage.base import Store, Update

# RFC 5280 reason names as operators type them, and their CRLReason codes.
REASON_NAMES = {"unspecified": 0, "keyCompromise": 1, "affiliationChanged": 3,
                "superseded": 4, "cessationOfOperation": 5, "privilegeWithdrawn": 9}
# The codes RFC 8555 §7.6 lets a client ask for (the same set serves operators).
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


class Revoker:
    """Revokes at the certificate's CA and records it."""

    def __init__(self, store: Store, clock: Clock, connectors: Mapping[str, Connector],
                 trail: audit.AuditTrail) -> None:
        self.store = store
        self.clock = clock
        self.connectors = connectors
        self.trail = trail

    async def revoke(self, cert: Certificate, code: int, actor: str) -> Certificate:
        """Revoke ``cert``; the caller has checked that ``actor`` may."""
        if cert.revoked_at is not None:
            raise GatewayError(ErrorKind.ALREADY_REVOKED, "the certificate is already revoked")
        connector = self.connectors.get(cert.ca)
        if connector is None:
            raise GatewayError(ErrorKind.SERVER_INTERNAL, f"CA {cert.ca!r} is no longer "
                               "configured; revoke the certificate at the CA itself")
        try:
            await connector.revoke(cert.leaf_der, RevocationReason(code))
        except AlreadyRevoked:
            pass  # the CA knew already; record it here too
        except RevocationUnsupported as exc:
            raise GatewayError(ErrorKind.SERVER_INTERNAL,
                               f"CA {cert.ca!r} cannot revoke through this gateway: {exc}") from exc
        except ConnectorError as exc:
            raise GatewayError(ErrorKind.CA_UNAVAILABLE, f"the CA could not revoke: {exc}",
                               retry_after=30) from exc
        revoked = replace(cert, revoked_at=self.clock.now(), revocation_reason=code)
        await self.store.apply([Update(revoked), self.trail.event(
            audit.REVOKED, actor=actor, ca=cert.ca, request_id=cert.order_id,
            extra={"serial": cert.serial, "reason": code})])
        return revoked
