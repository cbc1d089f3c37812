"""The audit trail: who asked for what, what the gateway decided, and what the CA did.

Every decision of the core (an order requested, a validation done, a policy
refusal, an approval, an issuance, a failure, a revocation, an unauthorized
attempt) becomes one :class:`gateway.model.records.AuditEvent`. The core adds the
event to the same ``Store.apply`` unit as the state change it records, so an
audit write costs one more INSERT in a transaction that commits anyway; only
refusals, which change no state, are appended on their own.

The store chains the rows (``gateway.audit_chain``); the serving gateway signs
the chain's head into an anchor log outside the database
(``gateway.core.anchoring``, ``gateway.audit_anchor``); ``acme-gateway audit
verify`` recomputes the chain and checks it against those anchors, and ``audit
report`` summarises a period (``gateway.audit_report``).

Where a request came from (source address, HTTP request id) is set by the app's
middleware in a context variable, so the core records it without knowing HTTP.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, NamedTuple

from gateway.model.clock import Clock
from gateway.model.records import AuditEvent, Identifier, restore
from gateway.model.store import Insert, Store

log = logging.getLogger("gateway.audit")

# Event types, as stored and reported.
ACCOUNT_CREATED = "account_created"
ACCOUNT_DEACTIVATED = "account_deactivated"
REQUESTED = "requested"
VALIDATED = "validated"
POLICY_REFUSED = "policy_refused"
APPROVAL_PENDING = "approval_pending"
APPROVED = "approved"
REJECTED = "rejected"
ISSUED = "issued"
FAILED = "failed"
REVOKED = "revoked"
UNAUTHORIZED = "unauthorized"
EAB_CREATED = "eab_created"
EAB_REVOKED = "eab_revoked"
RATE_LIMITED = "rate_limited"
RENEWAL_ADVANCED = "renewal_advanced"
SCEP_OTP_ISSUED = "scep_otp_issued"


class RequestInfo(NamedTuple):
    """The transport facts of the request being served (one per request: a NamedTuple is
    cheaper to make than a frozen dataclass)."""

    request_id: str
    source: str


CURRENT_REQUEST: ContextVar[RequestInfo | None] = ContextVar("gateway_request", default=None)


# Request ids: a random prefix per process and a counter. Unique, cheap (every request
# gets one, few cause an event), and not meant to be secret.
_REQUEST_PREFIX = secrets.token_hex(4)
_REQUEST_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A short id tying the audit events of one HTTP request together."""
    return f"{_REQUEST_PREFIX}{next(_REQUEST_COUNTER):08x}"


def acme_actor(account_id: str) -> str:
    """How an ACME account appears as an actor."""
    return f"acme:{account_id}"


def names(idents: tuple[Identifier, ...] | list[Identifier]) -> tuple[str, ...]:
    """Identifier values, as stored in events."""
    return tuple(i.value for i in idents)


class AuditTrail:
    """Builds audit events and appends them through the store."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        # Told of every event built (the app counts them for /metrics).
        self.observer: Callable[[AuditEvent], None] | None = None

    def event(self, event: str, *, actor: str = "", identifiers: tuple[str, ...] = (),
              profile: str = "", ca: str = "", result: str = "ok", detail: str = "",
              request_id: str = "", extra: dict[str, Any] | None = None) -> Insert:
        """An Insert op for one event, to put into the same apply as the state change."""
        info = CURRENT_REQUEST.get()
        # Every field is given: restore skips the frozen __init__ (one event per change).
        built = restore(
            AuditEvent, event=event, at=self.clock.now(), actor=actor,
            identifiers=tuple(identifiers), profile=profile, ca=ca, result=result,
            detail=detail, request_id=request_id or (info.request_id if info else ""),
            source=info.source if info else "", extra=extra or {})
        if self.observer is not None:
            self.observer(built)
        return Insert(built)

    async def record(self, event: str, **fields: Any) -> None:
        """Append one event on its own (for decisions that change no other state).

        A failing audit write is logged and swallowed: the refusal it records has
        already happened, and the client must still get its answer.
        """
        try:
            await self.store.apply([self.event(event, **fields)])
        except Exception:
            log.exception("could not append audit event %s", event)


def recorded_policy(extra: dict[str, Any]) -> dict[str, Any] | None:
    """The profile's rules recorded in an ``issued`` event's extra, if any were."""
    policy = extra.get("policy")
    return policy if isinstance(policy, dict) else None
