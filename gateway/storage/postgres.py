"""PostgreSQL store: the engine for several gateway nodes behind a load balancer.

Every node (and every ``serve --workers`` process) holds a pool of asyncpg
connections to one database. A unit of :meth:`PostgresStore.apply` is one
transaction: its compare-and-set updates run first, and the first that finds
no row in the expected status rolls the whole unit back. PostgreSQL commits
concurrent transactions together on its own (one WAL flush for many), so no
grouping is needed here.

What the nodes coordinate through the database:

- the audit chain: a unit's audit events are appended last, under a
  transaction-scoped advisory lock, after reading the chain's head; the lock
  is held only for those inserts and the commit, so the chain stays in one
  order whichever node writes;
- CA jobs: :meth:`claim_job` moves ``run_at`` forward (the lease) on a row it
  locks with ``FOR UPDATE SKIP LOCKED``, so two nodes claiming at once never
  wait on each other and only one wins; a dead node's claims run out and the
  survivors' scans find the jobs due again;
- nonces: see :mod:`gateway.core.node_nonces` (spent once in ``spent_nonces``).

Lost connections (server restarted, failover, network) surface as
:class:`StoreUnavailable`; the pool drops broken connections and opens new
ones on the next call, so the store reconnects by itself.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from gateway import audit_chain
from gateway.model.records import (
    Account,
    Authorization,
    Certificate,
    CertificateQuery,
    EabKey,
    Job,
    Order,
    RenewalAdvice,
    ScepOtp,
    ScepTransaction,
)
from gateway.model.store import (
    Conflict,
    DatabaseStats,
    Op,
    Spend,
    StoreUnavailable,
    TableStats,
)
from gateway.storage import buckets, inventory, pg_schema, renewals, retention, rows
from gateway.storage.sqltext import (
    AUDIT,
    AUDIT_INSERT,
    AUTHZ_SELECT,
    Statement,
    numbered,
    select,
    statements,
)

log = logging.getLogger("gateway.storage")
# pg_advisory_xact_lock key of audit appends ("gw-audit" as a number).
AUDIT_LOCK = 0x67772D6175646974
# Failures that mean "the database is not reachable now", not "the request is wrong".
# A connection the server dropped mid-statement can also surface as asyncpg's internal
# protocol-state error ("cannot switch to state ..."): the connection is gone, not the
# request wrong, and the pool replaces it.
_UNREACHABLE = (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError,
                asyncpg.exceptions.OperatorInterventionError, asyncpg.InterfaceError,
                asyncpg.exceptions.InternalClientError,
                asyncpg.exceptions.TooManyConnectionsError)
# A connection attempt or statement taking longer than this is a database not answering.
CONNECT_TIMEOUT_SECONDS = 5.0
COMMAND_TIMEOUT_SECONDS = 15.0
_AUDIT_INSERT = numbered(AUDIT_INSERT)
_CLAIM = ("UPDATE jobs SET run_at = $1 WHERE id = (SELECT id FROM jobs WHERE id = $2 "
          "AND run_at IS NOT DISTINCT FROM $3 AND state IN ('queued', 'waiting') "
          "FOR UPDATE SKIP LOCKED)")


_AUDIT_HEAD = f"SELECT seq, hash FROM {rows.AUDIT_TABLE} ORDER BY seq DESC LIMIT 1"


def _statements(op: Op) -> list[Statement]:
    """The shared SQL of one operation; a bucket's spend in PostgreSQL's spelling."""
    if isinstance(op, Spend):
        return [buckets.spend_statement(op, greatest="GREATEST")]
    return statements(op)


class _Refused(Exception):
    """A compare-and-set found its row changed: roll the unit back."""


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _count(status: str) -> int:
    """The row count of a command status ("DELETE 3" → 3)."""
    return int(status.rsplit(" ", 1)[-1])


def _changed(status: str) -> bool:
    """Whether a command status ("UPDATE 1", "INSERT 0 1", ...) counts a row."""
    return not status.endswith(" 0")


class PostgresStore:
    """The Store protocol on a PostgreSQL database shared by every node."""

    def __init__(self, url: str, pool_size: int = 10, password: str | None = None) -> None:
        self.url = url
        self.where = redacted(url)
        self.pool_size = pool_size
        self._password = password
        self._pool: asyncpg.Pool | None = None
        self._unreachable_since: float | None = None  # monotonic time of the first failure

    # -- lifecycle -----------------------------------------------------------------

    async def open(self) -> None:
        """Connect, and bring the schema up to date (refusing one newer than this code)."""
        await self.migrate()
        # No floor of idle connections (min_size=0): released ones are kept anyway, and
        # keeping a floor makes asyncpg log a traceback a second while the database is down.
        self._pool = await asyncpg.create_pool(
            self.url, password=self._password, min_size=0, max_size=self.pool_size,
            timeout=CONNECT_TIMEOUT_SECONDS, command_timeout=COMMAND_TIMEOUT_SECONDS)

    async def migrate(self) -> tuple[int, int]:
        """Apply missing migrations on a connection of its own; (version before, after)."""
        try:
            conn = await asyncpg.connect(self.url, password=self._password,
                                         timeout=CONNECT_TIMEOUT_SECONDS)
        except _UNREACHABLE as exc:
            raise self._down(exc) from exc
        try:
            async with conn.transaction():
                return await pg_schema.migrate(conn, self.where)
        finally:
            await conn.close()

    async def close(self) -> None:
        """Wait for queries in flight, then close every connection."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; an unreachable database becomes StoreUnavailable."""
        assert self._pool is not None, "PostgresStore used before open()"
        try:
            async with self._pool.acquire() as conn:
                try:
                    yield conn
                except asyncpg.exceptions.InternalClientError:
                    conn.terminate()  # its protocol state is lost: never hand it out again
                    raise
        except _UNREACHABLE as exc:
            raise self._down(exc) from exc
        if self._unreachable_since is not None:
            log.warning("database %s reachable again after %.1f s", self.where,
                        time.monotonic() - self._unreachable_since)
            self._unreachable_since = None

    def _down(self, exc: BaseException) -> StoreUnavailable:
        """The error to raise for ``exc``; logged once per outage, not once per request."""
        cause = f"{self.where}: {type(exc).__name__}: {exc}"
        if self._unreachable_since is None:
            self._unreachable_since = time.monotonic()
            log.warning("database not reachable, answering 503 until it is: %s", cause)
        return StoreUnavailable(cause)

    async def ping(self) -> None:
        """``SELECT 1`` through the pool (StoreUnavailable when the server is gone)."""
        await self._fetch("SELECT 1")

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self._connection() as conn:
            return list(await conn.fetch(sql, *args))

    async def _fetchrow(self, sql: str, *args: Any) -> Any | None:
        async with self._connection() as conn:
            return await conn.fetchrow(sql, *args)

    # -- writes --------------------------------------------------------------------

    async def apply(self, ops: Sequence[Op]) -> bool:
        """Apply ``ops`` in one transaction; returns once it is committed."""
        stmts = [s for op in ops for s in _statements(op)]
        try:
            async with self._connection() as conn, conn.transaction():
                await self._run(conn, stmts)
        except _Refused:
            return False
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(str(exc)) from exc
        return True

    @staticmethod
    async def _run(conn: asyncpg.Connection, stmts: list[Statement]) -> None:
        appends = [params for sql, params, _ in stmts if sql == AUDIT]
        for sql, params, must_change in stmts:
            if sql == AUDIT:
                continue
            if not _changed(await conn.execute(numbered(sql), *params)) and must_change:
                raise _Refused
        if appends:
            await _append_audit(conn, appends)

    async def claim_job(self, job: Job, until: datetime) -> bool:
        """Lease an unfinished job until ``until`` if its ``run_at`` is still the one read.

        SKIP LOCKED: a node that finds the row being claimed by another moves on
        at once instead of waiting for that transaction to end.
        """
        async with self._connection() as conn:
            status = await conn.execute(_CLAIM, rows.ts(until), job.id, rows.ts(job.run_at))
        return _changed(status)

    async def spend_nonce(self, nonce: str, expires: float) -> bool:
        """Record ``nonce`` as spent; False if some node spent it before."""
        async with self._connection() as conn:
            status = await conn.execute(
                "INSERT INTO spent_nonces (nonce, expires) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING", nonce, expires)
        return _changed(status)

    async def forget_spent_nonces(self, before: float) -> None:
        """Drop spent nonces that expired before ``before`` (they fail their expiry check)."""
        async with self._connection() as conn:
            await conn.execute("DELETE FROM spent_nonces WHERE expires < $1", before)

    async def node_secret(self, name: str, size: int = 32) -> bytes:
        """A random secret shared by every node: made by the first to ask, then read."""
        async with self._connection() as conn:
            await conn.execute("INSERT INTO node_secrets (name, value) VALUES ($1, $2) "
                               "ON CONFLICT DO NOTHING", name, secrets.token_bytes(size))
            value = await conn.fetchval("SELECT value FROM node_secrets WHERE name = $1", name)
        return bytes(value)

    # -- reads ---------------------------------------------------------------------

    async def _one(self, model: type, condition: str, *args: Any) -> Any | None:
        return await self._fetchrow(numbered(select(model, condition)), *args)

    async def get_account(self, account_id: str) -> Account | None:
        """One account by id (never cached: another node may have changed it)."""
        r = await self._one(Account, "WHERE id = ?", account_id)
        return rows.account(r) if r else None

    async def get_account_by_thumbprint(self, thumbprint: str) -> Account | None:
        """The account registered with this key."""
        r = await self._one(Account, "WHERE thumbprint = ?", thumbprint)
        return rows.account(r) if r else None

    async def get_order(self, order_id: str) -> Order | None:
        """One order by id."""
        r = await self._one(Order, "WHERE id = ?", order_id)
        return rows.order(r) if r else None

    async def list_order_ids(self, account_id: str, after: str, limit: int) -> list[str]:
        """An account's order ids, oldest first, after the cursor."""
        found = await self._fetch(
            "SELECT id FROM orders WHERE account_id = $1 AND created_seq > COALESCE("
            "(SELECT created_seq FROM orders WHERE id = $2), 0) ORDER BY created_seq LIMIT $3",
            account_id, after, limit)
        return [r[0] for r in found]

    async def _authzs_where(self, where: str, *args: Any) -> list[Authorization]:
        # One statement, so authorization and challenges come from one snapshot.
        found = await self._fetch(
            f"{AUTHZ_SELECT} FROM (SELECT * FROM authorizations WHERE {where}) a "
            "LEFT JOIN challenges c ON c.authz_id = a.id ORDER BY c.created_seq", *args)
        return rows.joined_authorizations(found)

    async def get_authz(self, authz_id: str) -> Authorization | None:
        """One authorization with its challenges."""
        found = await self._authzs_where("id = $1", authz_id)
        return found[0] if found else None

    async def get_authzs(self, authz_ids: Sequence[str]) -> list[Authorization]:
        """Several authorizations, in the order asked."""
        if not authz_ids:
            return []
        by_id = {a.id: a for a in await self._authzs_where("id = ANY($1::text[])",
                                                            list(authz_ids))}
        return [by_id[i] for i in authz_ids if i in by_id]

    async def get_authz_by_challenge(self, challenge_id: str) -> Authorization | None:
        """The authorization that owns a challenge."""
        found = await self._authzs_where(
            "id = (SELECT authz_id FROM challenges WHERE id = $1)", challenge_id)
        return found[0] if found else None

    async def get_authz_and_order_by_challenge(
            self, challenge_id: str) -> tuple[Authorization, Order | None] | None:
        """The authorization that owns a challenge, and its order (two reads)."""
        authz = await self.get_authz_by_challenge(challenge_id)
        return None if authz is None else (authz, await self.get_order(authz.order_id))

    async def processing_challenges(self) -> list[Authorization]:
        """Authorizations with a challenge being validated."""
        return await self._authzs_where(
            "id IN (SELECT authz_id FROM challenges WHERE status = 'processing')")

    async def get_certificate(self, cert_id: str) -> Certificate | None:
        """One certificate by id."""
        r = await self._one(Certificate, "WHERE id = ?", cert_id)
        return rows.certificate(r) if r else None

    async def get_certificate_by_serial(self, serial: str) -> Certificate | None:
        """One certificate by hex serial."""
        r = await self._one(Certificate, "WHERE serial = ?", serial)
        return rows.certificate(r) if r else None

    async def certified_csrs(self, spki_sha256: str, limit: int) -> list[bytes]:
        """The CSRs of orders whose certificate carries this public key."""
        found = await self._fetch(
            "SELECT o.csr FROM certificates c JOIN orders o ON o.id = c.order_id "
            "WHERE c.spki_sha256 = $1 LIMIT $2", spki_sha256, limit)
        return [bytes(r[0]) for r in found if r[0] is not None]

    async def order_replacing(self, cert_id: str) -> Order | None:
        """The newest order, not invalid, that replaces this ARI certID."""
        r = await self._one(Order, renewals.REPLACING, cert_id)
        return rows.order(tuple(r)) if r else None

    async def get_renewal_advice(self, certificate_id: str) -> RenewalAdvice | None:
        """The advice to renew a certificate now, if any."""
        r = await self._one(RenewalAdvice, "WHERE id = ?", certificate_id)
        return rows.renewal_advice(tuple(r)) if r else None

    async def live_certificates(self, now: datetime) -> list[tuple[Certificate, Order]]:
        """Unexpired, unrevoked certificates with their orders."""
        found = await self._fetch(numbered(renewals.live_query(
            rows.columns(Certificate, "c"), rows.columns(Order, "o"))), now.timestamp())
        width = len(rows.TABLES[Certificate][1])
        return [(rows.certificate(tuple(r)[:width]), rows.order(tuple(r)[width:]))
                for r in found]

    async def get_scep_otp(self, otp_id: str) -> ScepOtp | None:
        """One SCEP one-time password by id (its SHA-256)."""
        r = await self._one(ScepOtp, "WHERE id = ?", otp_id)
        return rows.scep_otp(r) if r else None

    async def get_scep_transaction(self, transaction_id: str) -> ScepTransaction | None:
        """One SCEP transaction by its label-qualified transactionID."""
        r = await self._one(ScepTransaction, "WHERE id = ?", transaction_id)
        return rows.scep_transaction(r) if r else None

    # -- the operator's inventory ---------------------------------------------------

    async def find_certificates(self, query: CertificateQuery,
                                now: datetime) -> list[tuple[Certificate, Order]]:
        """Certificates matching an operator's search, with their orders."""
        sql, params = inventory.certificate_search(query, now)
        found = await self._fetch(numbered(sql), *params)
        return [inventory.certificate_with_order(tuple(r)) for r in found]

    async def count_certificates(self, query: CertificateQuery, now: datetime) -> int:
        """How many certificates match an operator's search."""
        sql, params = inventory.certificate_count(query, now)
        return int((await self._fetch(numbered(sql), *params))[0][0])

    async def count_jobs(self) -> dict[str, int]:
        """Unfinished CA jobs by state."""
        return {state: int(n) for state, n in await self._fetch(inventory.JOB_COUNTS)}

    async def list_accounts(self, status: str, limit: int) -> list[Account]:
        """ACME accounts, newest first."""
        sql, params = inventory.account_list(status, limit)
        return [rows.account(tuple(r)) for r in await self._fetch(numbered(sql), *params)]

    async def audit_of_request(self, request_id: str, limit: int) -> list[dict[str, Any]]:
        """One request's audit rows, oldest first."""
        sql, params = inventory.request_audit(request_id, limit)
        return [dict(r) for r in await self._fetch(numbered(sql), *params)]

    async def get_job(self, order_id: str) -> Job | None:
        """The CA job of an order."""
        r = await self._one(Job, "WHERE order_id = ?", order_id)
        return rows.job(r) if r else None

    async def due_jobs(self, now: datetime, limit: int) -> list[Job]:
        """Jobs whose time has come (their lease, if any, has run out)."""
        found = await self._fetch(numbered(select(
            Job, "WHERE state IN ('queued', 'waiting') AND run_at <= ? ORDER BY run_at LIMIT ?")),
            now.timestamp(), limit)
        return [rows.job(r) for r in found]

    async def get_eab_key(self, kid: str) -> EabKey | None:
        """One EAB key by key identifier."""
        r = await self._one(EabKey, "WHERE id = ?", kid)
        return rows.eab_key(r) if r else None

    async def list_eab_keys(self) -> list[EabKey]:
        """Every EAB key, oldest first."""
        return [rows.eab_key(r) for r in await self._fetch(
            select(EabKey, "ORDER BY created_at, id"))]

    async def orders_awaiting_approval(self, limit: int) -> list[Order]:
        """Orders held for an approver, oldest first."""
        found = await self._fetch(numbered(select(
            Order, "WHERE approval = 'pending' AND status = 'processing' "
                   "ORDER BY created_at LIMIT ?")), limit)
        return [rows.order(r) for r in found]

    async def audit_rows(self, after_seq: int, limit: int, since: datetime | None = None,
                         until: datetime | None = None) -> list[dict[str, Any]]:
        """Raw audit rows after ``after_seq``, optionally within [since, until)."""
        where: list[str] = ["seq > ?"]
        params: list[Any] = [after_seq]
        for bound, op in ((since, ">="), (until, "<")):
            if bound is not None:
                where.append(f"at {op} ?")
                params.append(bound.timestamp())
        found = await self._fetch(numbered(
            f"SELECT * FROM {rows.AUDIT_TABLE} WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?"),
            *params, limit)
        return [dict(r) for r in found]


    async def audit_head(self) -> tuple[int, str]:
        """The newest committed audit row's seq and hash (what an anchor signs)."""
        head = await self._fetchrow(_AUDIT_HEAD)
        return (head[0], head[1]) if head else (0, audit_chain.GENESIS)

    # -- rate-limit buckets --------------------------------------------------------

    async def buckets_full_at(self, keys: Sequence[str]) -> dict[str, datetime]:
        """When each named rate-limit bucket is full again (absent: never spent, or forgotten)."""
        if not keys:
            return {}
        found = await self._fetch(numbered(buckets.full_at_query(len(keys))), *keys)
        return {key: datetime.fromtimestamp(full_at, UTC) for key, full_at in found}

    async def forget_full_buckets(self, now: datetime) -> None:
        """Drop the rate-limit buckets that are full by ``now``."""
        async with self._connection() as conn:
            await conn.execute(numbered(buckets.FORGET_FULL), now.timestamp())

    # -- retention -----------------------------------------------------------------

    async def prune(self, kind: str, before: datetime, limit: int, *,
                    dry_run: bool = False) -> int:
        """Remove (or count) up to ``limit`` records of ``kind`` past ``before``."""
        params = (before.timestamp(), limit)
        if dry_run:
            return int((await self._fetch(numbered(retention.count_statement(kind)),
                                          *params))[0][0])
        removed = 0
        async with self._connection() as conn, conn.transaction():
            for sql in retention.delete_statements(kind):  # children first, then the rows
                removed = _count(await conn.execute(numbered(sql), *params))
        return removed

    async def drop_archived_audit(self, through_seq: int, through_hash: str, limit: int) -> int:
        """Remove archived audit rows (see Store.drop_archived_audit), under the append lock."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", AUDIT_LOCK)
            return _count(await conn.execute(numbered(retention.DROP_ARCHIVED_AUDIT),
                                             through_seq, limit, through_seq, through_hash))

    async def table_stats(self) -> DatabaseStats:
        """Rows and bytes (indexes and TOAST included) per table; the database's size.

        PostgreSQL reuses dead space itself (autovacuum) and reports no free-page
        count as SQLite does: ``free_bytes`` is 0.
        """
        async with self._connection() as conn:
            size = await conn.fetchval("SELECT pg_database_size(current_database())")
            tables = {}
            for table in retention.TABLES:
                rows_ = await conn.fetchval(retention.rows_statement(table))
                bytes_ = await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", table)
                tables[table] = TableStats(int(rows_), int(bytes_))
        return DatabaseStats(int(size), 0, tables)

async def _append_audit(conn: asyncpg.Connection, appends: list[tuple[Any, ...]]) -> None:
    """Append audit events after the chain's head, under the lock every node takes."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", AUDIT_LOCK)
    head = await conn.fetchrow(_AUDIT_HEAD)
    seq, prev = (head[0], head[1]) if head else (0, audit_chain.GENESIS)
    for values in appends:
        seq += 1
        digest = audit_chain.link(prev, (seq, *values))
        await conn.execute(_AUDIT_INSERT, seq, *values, prev, digest)
        prev = digest
