"""The Store protocol: what the issuance core needs from a database.

Writes are expressed as a list of :class:`Insert` / :class:`Update` operations
applied all-or-nothing by :meth:`Store.apply`. An ``Update`` carries the status
the row must still have (``expect``); if another request changed it first, the
whole unit is rolled back and ``apply`` returns False. That compare-and-set is
how two racing finalizes, or a validation finishing during a deactivation,
resolve without locks held across awaits. A :class:`Spend` takes tokens from a
rate-limit bucket in the same unit as the change it pays for (an order, an
account), so a refused spend stores nothing and an accepted one costs no
extra commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from gateway.errors import ErrorKind, GatewayError
from gateway.model.buckets import Bucket
from gateway.model.records import (
    Account,
    AuditEvent,
    Authorization,
    Certificate,
    CertificateQuery,
    Challenge,
    EabKey,
    Job,
    Order,
    RenewalAdvice,
    ScepOtp,
    ScepTransaction,
)

# Retry-After of a request refused because the database is not reachable.
RETRY_AFTER_SECONDS = 5
# An AuditEvent may only be inserted: the audit table is append-only and hash-chained.
Model = (Account | Order | Authorization | Challenge | Certificate | Job | EabKey | AuditEvent
         | RenewalAdvice
         | ScepOtp | ScepTransaction)


@dataclass(frozen=True)
class Insert:
    """Insert a new row for ``model`` (an Authorization inserts its challenges too)."""

    model: Model


@dataclass(frozen=True)
class Update:
    """Overwrite ``model``'s row, if its stored status still equals ``expect`` (when given).

    An order, authorization or challenge changes only through its state
    machine's moves: of those, the store rewrites just the fields a move sets
    (status, error, validation results, certificate, CSR, approval); the
    fields fixed when the row was inserted stay as inserted.
    """

    model: Model
    expect: str | None = None


@dataclass(frozen=True)
class Delete:
    """Remove a row (used only for finished jobs)."""

    model: Job


@dataclass(frozen=True)
class Spend:
    """Take ``cost`` tokens from the bucket named ``key``; the unit fails if it has fewer.

    With ``overdraw`` the tokens are taken even when the bucket runs dry: the
    spend counts something that has already happened (a certificate issued, a
    validation failed), and later requests are checked against the count.
    """

    key: str
    bucket: Bucket
    cost: int
    at: datetime
    overdraw: bool = False


Op = Insert | Update | Delete | Spend


@dataclass(frozen=True)
class TableStats:
    """One table's rows and the bytes its pages (indexes included) take on disk."""

    rows: int
    bytes: int


@dataclass(frozen=True)
class DatabaseStats:
    """The database's size on disk, the part of it free for reuse, and each table."""

    size_bytes: int
    free_bytes: int
    tables: dict[str, TableStats]


class Conflict(Exception):
    """An Insert hit a unique constraint (e.g. an account key registered twice)."""


class Store(Protocol):
    """Persistence of accounts, orders, authorizations, certificates and jobs."""

    async def open(self) -> None:
        """Connect and run migrations."""
        ...

    async def close(self) -> None:
        """Flush pending writes and disconnect."""
        ...

    async def apply(self, ops: Sequence[Op]) -> bool:
        """Apply ``ops`` atomically and durably; False if an ``expect`` did not hold."""
        ...

    async def ping(self) -> None:
        """One trivial read; raises :class:`StoreUnavailable` when the database cannot answer."""
        ...

    async def get_account(self, account_id: str) -> Account | None:
        """One account by id."""
        ...

    async def get_account_by_thumbprint(self, thumbprint: str) -> Account | None:
        """The account registered with this key (RFC 7638 thumbprint)."""
        ...

    async def get_order(self, order_id: str) -> Order | None:
        """One order by id."""
        ...

    async def list_order_ids(self, account_id: str, after: str, limit: int) -> list[str]:
        """An account's order ids, oldest first, after the cursor ``after`` ("" = start)."""
        ...

    async def get_authz(self, authz_id: str) -> Authorization | None:
        """One authorization with its challenges."""
        ...

    async def get_authzs(self, authz_ids: Sequence[str]) -> list[Authorization]:
        """Several authorizations with their challenges, in the order asked."""
        ...

    async def get_authz_by_challenge(self, challenge_id: str) -> Authorization | None:
        """The authorization that owns a challenge, with all its challenges."""
        ...

    async def get_authz_and_order_by_challenge(
            self, challenge_id: str) -> tuple[Authorization, Order | None] | None:
        """:meth:`get_authz_by_challenge` and the authorization's order, in one read where it can.

        A challenge POST needs both: the order settles in the commit of the outcome.
        """
        ...

    async def processing_challenges(self) -> list[Authorization]:
        """Authorizations that have a challenge in ``processing`` (to resume after a restart)."""
        ...

    async def get_certificate(self, cert_id: str) -> Certificate | None:
        """One certificate by id."""
        ...

    async def get_certificate_by_serial(self, serial: str) -> Certificate | None:
        """One certificate by lower-case hex serial."""
        ...

    async def certified_csrs(self, spki_sha256: str, limit: int) -> list[bytes]:
        """The CSRs of (up to ``limit``) orders whose certificate carries this public key."""
        ...

    async def order_replacing(self, cert_id: str) -> Order | None:
        """The newest order, not invalid, whose ``replaces`` is this ARI certID."""
        ...

    async def get_renewal_advice(self, certificate_id: str) -> RenewalAdvice | None:
        """The advice to renew a certificate now, if an operator or revocation gave it."""
        ...

    async def live_certificates(self, now: datetime) -> list[tuple[Certificate, Order]]:
        """Unexpired, unrevoked certificates with their orders (for renewal advice)."""
        ...

    async def find_certificates(self, query: CertificateQuery,
                                now: datetime) -> list[tuple[Certificate, Order]]:
        """Certificates matching ``query`` with the order each was issued for.

        Soonest expiry first when an expiry bound is given, else newest first.
        """
        ...

    async def count_certificates(self, query: CertificateQuery, now: datetime) -> int:
        """How many certificates match ``query`` (its limit does not apply)."""
        ...

    async def count_jobs(self) -> dict[str, int]:
        """Unfinished CA jobs by state (queued, waiting, approval)."""
        ...

    async def list_accounts(self, status: str, limit: int) -> list[Account]:
        """ACME accounts, newest first; only those in ``status`` unless it is empty."""
        ...

    async def audit_of_request(self, request_id: str, limit: int) -> list[dict[str, Any]]:
        """The raw audit rows of one request (an order id), in seq order."""
        ...

    async def get_job(self, order_id: str) -> Job | None:
        """The CA job of an order, if any."""
        ...

    async def due_jobs(self, now: datetime, limit: int) -> list[Job]:
        """Jobs whose ``run_at`` has come, oldest first."""
        ...

    async def claim_job(self, job: Job, until: datetime) -> bool:
        """Move an unfinished job's ``run_at`` to ``until`` if it is still ``job.run_at``.

        The claim of one process among several: the one whose compare-and-set
        succeeds runs the job; the others see it as not due until ``until``.
        """
        ...

    async def get_eab_key(self, kid: str) -> EabKey | None:
        """One External Account Binding key by key identifier."""
        ...

    async def list_eab_keys(self) -> list[EabKey]:
        """Every EAB key, oldest first."""
        ...

    async def get_scep_otp(self, otp_id: str) -> ScepOtp | None:
        """One SCEP one-time password by the SHA-256 of its value."""
        ...

    async def get_scep_transaction(self, transaction_key: str) -> ScepTransaction | None:
        """The order a SCEP transaction (label and transactionID) is bound to."""
        ...

    async def orders_awaiting_approval(self, limit: int) -> list[Order]:
        """Orders held for an approver, oldest first."""
        ...

    async def buckets_full_at(self, keys: Sequence[str]) -> dict[str, datetime]:
        """When each named rate-limit bucket is full again (a bucket never spent may be absent)."""
        ...

    async def forget_full_buckets(self, now: datetime) -> None:
        """Drop the buckets that are full by ``now``: an absent bucket is a full one."""
        ...

    async def audit_rows(self, after_seq: int, limit: int, since: datetime | None = None,
                         until: datetime | None = None) -> list[dict[str, Any]]:
        """Raw audit rows (every column, chain included) with seq > after_seq, in seq order."""
        ...

    async def audit_head(self) -> tuple[int, str]:
        """The newest committed audit row's seq and hash; ``(0, GENESIS)`` for an empty trail."""
        ...

    async def prune(self, kind: str, before: datetime, limit: int, *,
                    dry_run: bool = False) -> int:
        """Remove up to ``limit`` records of ``kind`` whose window ended before ``before``.

        The kinds and what each never removes are in :mod:`gateway.storage.retention`.
        Returns how many went (with ``dry_run``, how many would; nothing is removed).
        One call is one short transaction; the audit trail is never a kind.
        """
        ...

    async def table_stats(self) -> DatabaseStats:
        """Rows and bytes per table, and the database's size (what ``db stats`` prints)."""
        ...

    async def drop_archived_audit(self, through_seq: int, through_hash: str, limit: int) -> int:
        """Remove up to ``limit`` of the oldest audit rows up to ``through_seq``: rows that
        ``audit archive`` has written to a signed file.

        Nothing goes unless row ``through_seq`` still has ``through_hash``, and the
        newest row never goes. Returns how many went.
        """
        ...


class StoreUnavailable(GatewayError):
    """The database cannot be reached now (connection lost, server restarting, failover).

    A GatewayError, so that whichever request meets it is answered 503 with
    Retry-After by its front end, like an unavailable CA; the store reconnects
    by itself. A write that failed this way is not known to have committed,
    and the client was not told it did. ``cause`` (never sent to clients)
    says what failed, for the log.
    """

    def __init__(self, cause: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(ErrorKind.CA_UNAVAILABLE,
                         "the gateway's database is not reachable now; retry later",
                         retry_after=retry_after)
        self.cause = cause


class NonceLedger(Protocol):
    """A store through which several gateway nodes share nonces (PostgreSQL)."""

    async def spend_nonce(self, nonce: str, expires: float) -> bool:
        """Record ``nonce`` as spent; False if it was spent before (by any node)."""
        ...

    async def forget_spent_nonces(self, before: float) -> None:
        """Drop spent nonces that expired before ``before`` (UNIX seconds)."""
        ...

    async def node_secret(self, name: str, size: int = 32) -> bytes:
        """A random secret every node reads alike; made by the first node that asks."""
        ...
