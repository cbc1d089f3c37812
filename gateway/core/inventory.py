"""The operator's certificate inventory and account management.

Search issued certificates (by name, serial, account, profile, CA, expiry
window, state), show one with its order and audit history, revoke one with a
reason; list ACME accounts and deactivate one. Every operator action is
audited with the operator as actor. The admin API, the console and the CLI
all come here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from gateway import audit
from gateway.core import compliance
from gateway.core.compliance import IssuanceVerdict
from gateway.core.revocation import RevocationService, reason_code
from gateway.errors import ErrorKind, GatewayError
from gateway.model.clock import Clock
from gateway.model.records import DEACTIVATED, VALID, Account, Certificate, CertificateQuery, Order
from gateway.model.store import Store, Update

STATES = ("valid", "revoked", "expired")
# The windows of the expiring-soon figures (metrics, console), in days.
EXPIRY_WINDOWS_DAYS = (7, 30)
MAX_PAGE = 1000
HISTORY_LIMIT = 200
# How many of the newest audit rows the console's audit search looks through.
AUDIT_WINDOW = 5000
_SERIAL = re.compile(r"[0-9a-f]{1,64}")


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate, the order it was issued for, and its state when it was read."""

    certificate: Certificate
    order: Order
    state: str  # valid | revoked | expired


@dataclass(frozen=True)
class CertificateRecord:
    """One certificate in full: with its audit history (oldest first)."""

    issued: IssuedCertificate
    history: list[dict[str, Any]]


def normalize_serial(text: str) -> str:
    """A serial as stored: lower-case hex without separators or leading zeros."""
    compact = text.strip().lower().replace(":", "").replace(" ", "")
    compact = compact[2:] if compact.startswith("0x") else compact
    if not _SERIAL.fullmatch(compact):
        raise GatewayError(ErrorKind.MALFORMED, f"serial {text!r} is not hexadecimal "
                           "(e.g. 4f:0a:19 or 4f0a19)")
    return compact.lstrip("0") or "0"


def check_query(query: CertificateQuery) -> CertificateQuery:
    """Refuse a search the store cannot run; serials in stored form."""
    if query.state and query.state not in STATES:
        raise GatewayError(ErrorKind.MALFORMED, f"state {query.state!r} is not one of "
                           f"{', '.join(STATES)}")
    if not 1 <= query.limit <= MAX_PAGE:
        raise GatewayError(ErrorKind.MALFORMED, f"limit must be 1 to {MAX_PAGE}")
    if query.serial:
        return replace(query, serial=normalize_serial(query.serial))
    return query


class InventoryService:
    """Certificates and accounts as an operator sees and acts on them."""

    def __init__(self, store: Store, clock: Clock, trail: audit.AuditTrail,
                 revoker: RevocationService, max_validity_days: int = 398) -> None:
        self.store = store
        self.clock = clock
        self.trail = trail
        self.revoker = revoker
        self.max_validity_days = max_validity_days  # [audit]; for issuances without rules

    def state_of(self, cert: Certificate) -> str:
        """valid, revoked or expired, now."""
        if cert.revoked_at is not None:
            return "revoked"
        return "expired" if cert.not_after <= self.clock.now() else "valid"

    async def find(self, query: CertificateQuery) -> list[IssuedCertificate]:
        """Certificates matching ``query`` (see :class:`CertificateQuery`)."""
        query = check_query(query)
        found = await self.store.find_certificates(query, self.clock.now())
        name = query.name.lower()
        return [IssuedCertificate(cert, order, self.state_of(cert)) for cert, order in found
                if not name or any(name in i.value.lower() for i in order.identifiers)]

    async def certificate(self, ref: str) -> IssuedCertificate:
        """One certificate by id or serial."""
        cert = await self.store.get_certificate(ref)
        if cert is None and _looks_like_serial(ref):
            cert = await self.store.get_certificate_by_serial(normalize_serial(ref))
        order = await self.store.get_order(cert.order_id) if cert is not None else None
        if cert is None or order is None:
            raise GatewayError(ErrorKind.NOT_FOUND, f"no certificate with id or serial {ref!r}; "
                               "find it with a search by name")
        return IssuedCertificate(cert, order, self.state_of(cert))

    async def record(self, ref: str) -> CertificateRecord:
        """One certificate with its audit history."""
        issued = await self.certificate(ref)
        history = await self.store.audit_of_request(issued.order.id, HISTORY_LIMIT)
        return CertificateRecord(issued, history)

    async def revoke(self, ref: str, reason: object, actor: str) -> IssuedCertificate:
        """Revoke by an operator, with an RFC 5280 reason (code or name)."""
        code = reason_code(reason, by_name=True)
        issued = await self.certificate(ref)
        revoked = await self.revoker.revoke_certificate(issued.certificate, code, actor)
        return IssuedCertificate(revoked, issued.order, "revoked")

    async def expiring_soon(self) -> dict[int, int]:
        """Valid certificates expiring within each of EXPIRY_WINDOWS_DAYS from now."""
        now = self.clock.now()
        return {days: await self.store.count_certificates(
            CertificateQuery(expires_before=now + timedelta(days=days), state="valid"), now)
            for days in EXPIRY_WINDOWS_DAYS}

    async def jobs_waiting(self) -> dict[str, int]:
        """Unfinished CA jobs by what they wait for: approval, the CA (waiting), a run."""
        counts = await self.store.count_jobs()
        return {state: counts.get(state, 0) for state in ("approval", "waiting", "queued")}

    async def compliance(self, since: datetime | None,
                         until: datetime | None) -> list[IssuanceVerdict]:
        """Each issuance of [since, until) judged by the policy recorded with it."""
        return [v async for v in compliance.issuances(self.store, since, until,
                                                      self.max_validity_days)]

    async def recent_events(self, event: str = "", text: str = "",
                            limit: int = 200) -> list[dict[str, Any]]:
        """The newest audit rows (of the last AUDIT_WINDOW), newest first, filtered.

        ``event`` matches the event type exactly; ``text`` is a case-insensitive
        part of the actor, identifiers, request id or detail.
        """
        head, _ = await self.store.audit_head()
        rows = await self.store.audit_rows(max(0, head - AUDIT_WINDOW), AUDIT_WINDOW)
        needle = text.lower()
        found = [r for r in reversed(rows) if (not event or r["event"] == event) and (
            not needle or any(needle in str(r[k]).lower()
                              for k in ("actor", "identifiers", "request_id", "detail")))]
        return found[:limit]

    async def accounts(self, status: str = "", limit: int = 100) -> list[Account]:
        """ACME accounts, newest first."""
        if status and status not in (VALID, DEACTIVATED, "revoked"):
            raise GatewayError(ErrorKind.MALFORMED, f"status {status!r} is not one of "
                               "valid, deactivated, revoked")
        if not 1 <= limit <= MAX_PAGE:
            raise GatewayError(ErrorKind.MALFORMED, f"limit must be 1 to {MAX_PAGE}")
        return await self.store.list_accounts(status, limit)

    async def deactivate_account(self, account_id: str, actor: str) -> Account:
        """Deactivate an account for good: it can no longer order, finalize or revoke."""
        account = await self.store.get_account(account_id)
        if account is None:
            raise GatewayError(ErrorKind.NOT_FOUND, f"no ACME account {account_id!r}")
        if account.status != VALID:
            raise GatewayError(ErrorKind.CONFLICT, f"account {account_id} is already "
                               f"{account.status}")
        done = account.moved(DEACTIVATED)
        event = self.trail.event(audit.ACCOUNT_DEACTIVATED, actor=actor,
                                 request_id=account.id, detail="deactivated by an operator")
        if not await self.store.apply([Update(done, expect=VALID), event]):
            raise GatewayError(ErrorKind.CONFLICT, f"account {account_id} changed meanwhile; "
                               "look again")
        return done


def _looks_like_serial(ref: str) -> bool:
    try:
        normalize_serial(ref)
    except GatewayError:
        return False
    return True
