"""Domain objects of the issuance core and their state machines (RFC 8555 §7.1.6).

The transition functions here are the only code that changes a status: they
check that the move is legal and raise :class:`IllegalTransition` otherwise,
which keeps a slow CA, a retried request or a racing client from driving an
object into a state the RFC does not allow.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

# Status values, as they appear on the wire.
PENDING = "pending"
PROCESSING = "processing"
READY = "ready"
VALID = "valid"
INVALID = "invalid"
DEACTIVATED = "deactivated"
REVOKED = "revoked"
EXPIRED = "expired"

ORDER_MOVES = {
    PENDING: {READY, INVALID},
    READY: {PROCESSING, INVALID},
    PROCESSING: {VALID, INVALID},
    VALID: set(),
    INVALID: set(),
}
AUTHZ_MOVES = {
    PENDING: {VALID, INVALID, DEACTIVATED, EXPIRED},
    VALID: {DEACTIVATED, REVOKED, EXPIRED},
    INVALID: set(),
    DEACTIVATED: set(),
    EXPIRED: set(),
    REVOKED: set(),
}
CHALLENGE_MOVES = {
    PENDING: {PROCESSING, INVALID},
    PROCESSING: {VALID, INVALID},
    VALID: set(),
    INVALID: set(),
}
ACCOUNT_MOVES = {VALID: {DEACTIVATED, REVOKED}, DEACTIVATED: set(), REVOKED: set()}


class IllegalTransition(Exception):
    """A status change the state machine does not allow."""


# Every pair of base32 digits (RFC 4648 alphabet, lower case), by the 10 bits they encode.
_B32_PAIRS = tuple(a + b for a in "abcdefghijklmnopqrstuvwxyz234567"
                   for b in "abcdefghijklmnopqrstuvwxyz234567")
# Where each pair's 10 bits sit in a 16-byte value shifted left by 2 (130 bits, 26 digits).
_PAIR_SHIFTS = tuple(range(120, -1, -10))


def id_from_bytes(raw: bytes) -> str:
    """An identifier as lower-case base32 without padding.

    URL-safe, case-insensitive, and never starting with "-", so an operator can
    paste it into `acme-gateway approve ID` (base64url ids sometimes began with
    "-" and were taken for an option).
    """
    if len(raw) == 16:
        # Every id is 16 bytes: 13 table lookups give the same text as the
        # pure-Python ``base64.b32encode`` (3.11) at half its cost, and several
        # ids are made per order.
        bits = int.from_bytes(raw, "big") << 2
        return "".join([_B32_PAIRS[(bits >> shift) & 0x3FF] for shift in _PAIR_SHIFTS])
    return base64.b32encode(raw).decode().rstrip("=").lower()


def new_id() -> str:
    """A random identifier with 128 bits of entropy."""
    return id_from_bytes(secrets.token_bytes(16))


_Record = TypeVar("_Record")


def _copy_with(record: _Record, **changes: Any) -> _Record:
    """``dataclasses.replace`` for the records below, without running ``__init__`` again.

    They have no ``__post_init__`` and no ``init=False`` field, so a copy of the
    field values with some replaced is exactly what ``replace`` builds, at a
    fraction of the cost (a frozen ``__init__`` sets each field through
    ``object.__setattr__``; a state change happens several times per order).
    """
    unknown = changes.keys() - record.__dataclass_fields__.keys()  # type: ignore[attr-defined]
    if unknown:
        raise TypeError(f"{type(record).__name__} has no field {', '.join(sorted(unknown))}")
    copy = object.__new__(type(record))
    copy.__dict__.update(record.__dict__, **changes)
    return copy


def restore(cls: type[_Record], **fields: Any) -> _Record:
    """A record from the value of every one of its fields, without running ``__init__``.

    For the store's row decoders, which give every field: a frozen dataclass's
    ``__init__`` sets each field through ``object.__setattr__``, which costs three
    times what this does, and an authorization read builds five records.
    ``tests/storage/test_rows.py`` checks that each decoder sets every field.
    """
    made = object.__new__(cls)
    made.__dict__.update(fields)
    return made


def _move(moves: dict[str, set[str]], what: str, current: str, target: str) -> None:
    if target not in moves.get(current, set()):
        raise IllegalTransition(f"{what} cannot go from {current} to {target}")


@dataclass(frozen=True)
class Identifier:
    """An ACME identifier (RFC 8555 §9.7.7): type ``dns`` or ``ip``."""

    type: str
    value: str

    def to_json(self) -> dict[str, str]:
        """The wire form."""
        return {"type": self.type, "value": self.value}


@dataclass(frozen=True)
class Account:
    """An ACME account (RFC 8555 §7.1.2)."""

    id: str
    thumbprint: str
    jwk: dict[str, Any]
    status: str = VALID
    contact: tuple[str, ...] = ()
    tos_agreed: bool = False
    created_at: datetime | None = None
    eab_kid: str | None = None

    def moved(self, status: str) -> Account:
        """A copy in ``status``, if the account state machine allows it."""
        _move(ACCOUNT_MOVES, "account", self.status, status)
        return _copy_with(self, status=status)


@dataclass(frozen=True)
class Challenge:
    """One way to prove control of an authorization's identifier."""

    id: str
    authz_id: str
    type: str
    token: str
    status: str = PENDING
    validated: datetime | None = None
    error: dict[str, Any] | None = None
    records: tuple[dict[str, Any], ...] = ()

    def moved(self, status: str, **changes: Any) -> Challenge:
        """A copy in ``status`` with ``changes``, if the state machine allows it."""
        _move(CHALLENGE_MOVES, "challenge", self.status, status)
        return _copy_with(self, status=status, **changes)


@dataclass(frozen=True)
class Authorization:
    """Proof of control over one identifier for one account (RFC 8555 §7.1.4)."""

    id: str
    account_id: str
    order_id: str
    identifier: Identifier
    status: str
    expires: datetime
    wildcard: bool = False
    challenges: tuple[Challenge, ...] = ()

    def moved(self, status: str) -> Authorization:
        """A copy in ``status``, if the state machine allows it."""
        _move(AUTHZ_MOVES, "authorization", self.status, status)
        return _copy_with(self, status=status)

    def with_challenge(self, chall: Challenge) -> Authorization:
        """A copy holding ``chall`` in place of the challenge with its id."""
        return _copy_with(self, challenges=tuple(chall if c.id == chall.id else c
                                                 for c in self.challenges))

    def challenge(self, challenge_id: str) -> Challenge | None:
        """The challenge with this id, if it belongs here."""
        return next((c for c in self.challenges if c.id == challenge_id), None)


@dataclass(frozen=True)
class Order:
    """A request for one certificate (RFC 8555 §7.1.3)."""

    id: str
    account_id: str
    status: str
    identifiers: tuple[Identifier, ...]
    authz_ids: tuple[str, ...]
    expires: datetime
    profile: str
    created_at: datetime
    not_before: datetime | None = None
    not_after: datetime | None = None
    error: dict[str, Any] | None = None
    certificate_id: str | None = None
    csr_der: bytes | None = None
    approval: str | None = None  # None, "pending", "approved", "rejected"
    replaces: str | None = None  # the ARI certID of the certificate it renews (RFC 9773 §5)

    def moved(self, status: str, **changes: Any) -> Order:
        """A copy in ``status`` with ``changes``, if the state machine allows it."""
        _move(ORDER_MOVES, "order", self.status, status)
        return _copy_with(self, status=status, **changes)


@dataclass(frozen=True)
class Certificate:
    """An issued certificate and the chain served with it."""

    id: str
    order_id: str
    account_id: str
    serial: str  # lower-case hex, no leading zeros
    leaf_der: bytes
    chain_pem: str  # leaf first, as served to the client
    not_before: datetime
    not_after: datetime
    spki_sha256: str
    ca: str
    revoked_at: datetime | None = None
    revocation_reason: int | None = None


@dataclass(frozen=True)
class RenewalAdvice:
    """An operator's (or a revocation's) word that a certificate must be renewed now.

    ``id`` is the certificate's id. Its ARI window (RFC 9773) moves to just
    before ``advanced_at``, so clients that ask renew at once.
    """

    id: str
    advanced_at: datetime
    reason: str
    explanation_url: str = ""


@dataclass(frozen=True)
class Job:
    """A persisted unit of long work (a CA call) that survives restarts."""

    id: str
    order_id: str
    state: str = "queued"  # queued | waiting (CA pending) | done | failed
    attempts: int = 0
    run_at: datetime | None = None
    ca_ref: str | None = None
    last_error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EabKey:
    """An External Account Binding key (RFC 8555 §7.3.4) and what it lets an account do.

    ``hmac_key`` is kept because verifying a MAC needs it; it is never logged or listed.
    ``status`` is ``active``, ``used`` (a single-use key that bound an account) or ``revoked``.
    """

    id: str  # the key identifier (kid) given to the client
    hmac_key: str  # base64url, no padding
    status: str = "active"
    profiles: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = ()
    reusable: bool = False
    uses: int = 0
    created_at: datetime | None = None
    note: str = ""


@dataclass(frozen=True)
class AuditEvent:
    """One entry of the append-only audit trail; the store adds sequence and hash chain."""

    event: str
    at: datetime
    actor: str = ""
    identifiers: tuple[str, ...] = ()
    profile: str = ""
    ca: str = ""
    result: str = "ok"
    detail: str = ""
    request_id: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScepOtp:
    """A one-time SCEP challenge password, kept only as its SHA-256 (``id``).

    ``status`` is ``active`` until one PKCSReq redeems it (``used``); ``names`` are
    the patterns its holder may request, on top of nothing else.
    """

    id: str  # SHA-256 hex of the password
    label: str
    names: tuple[str, ...]
    expires: datetime
    status: str = "active"  # active | used
    created_at: datetime | None = None
    used_by: str = ""  # the transaction that redeemed it


@dataclass(frozen=True)
class ScepTransaction:
    """A SCEP transactionID bound, at its first PKCSReq or RenewalReq, to one order.

    Only the key that signed that request may poll it or send it again; the id is
    the label and the transactionID, so that two labels never share one.
    """

    id: str
    order_id: str
    requester: str
    signer_key_sha256: str  # SHA-256 of the signer certificate's SubjectPublicKeyInfo
    csr_sha256: str
    created_at: datetime
    status: str = "open"


@dataclass(frozen=True)
class CertificateQuery:
    """What an operator searches the certificate inventory by; empty fields match all.

    ``name`` is a case-insensitive substring of one of the names the certificate
    was ordered for; ``expires_after``/``expires_before`` bound ``not_after``;
    ``state`` is ``valid`` (neither revoked nor expired at ``now``), ``revoked``
    or ``expired``.
    """

    name: str = ""
    serial: str = ""
    account: str = ""
    profile: str = ""
    ca: str = ""
    expires_after: datetime | None = None
    expires_before: datetime | None = None
    state: str = ""
    limit: int = 100
