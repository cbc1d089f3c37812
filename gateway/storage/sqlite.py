"""SQLite store: the embedded default (WAL, synchronous=FULL, grouped commits).

Reads go through aiosqlite. Writes use one connection and commit in groups:
every unit of work that arrives while a commit is running is applied in the
next transaction, so that one fsync covers many client-visible changes
without weakening durability: no caller is answered before the commit that
holds its change has returned. One unit's failed compare-and-set must not
undo another's: the group runs optimistically under one SAVEPOINT, and in the
rare group where a unit fails it is rolled back to that savepoint and run
again without the failed unit, each remaining unit in a SAVEPOINT of its own.

The statements of a group run on the event loop's thread (each takes
microseconds: the pages are in cache and nothing is synced); only COMMIT, which
writes and fsyncs the WAL, runs in the writer thread. One hop per group instead
of a hop per statement: sqlite3 releases the GIL around every statement, and in
a thread each release is a GIL hand-over with the busy loop. When another
process holds the write lock, the whole group goes to the writer thread, which
may wait for it (busy_timeout) without stalling the loop.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import os
import sqlite3
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from gateway import audit_chain
from gateway.core.models import (
    Account,
    AuditEvent,
    Authorization,
    Certificate,
    Challenge,
    EabKey,
    Job,
    Order,
)
from gateway.core.role import ChangeCounter
from gateway.storage import buckets, retention, rows, sqlite_upkeep
from gateway.storage.base import Conflict, DatabaseStats, Delete, Insert, Op, Spend
from gateway.storage.schema import MIGRATIONS

Statement = tuple[str, tuple[Any, ...], bool]  # sql, params, must change a row
# How long the writer thread waits for a write lock held by another process (a CLI).
_BUSY_WAIT_MS = 5000
# An authorization's columns, then its challenge's (rows.authorization and rows.challenge
# read them by position).
_AUTHZ_WIDTH = len(rows.TABLES[Authorization][1])
_AUTHZ_SELECT = f"SELECT {rows.columns(Authorization, 'a')}, {rows.columns(Challenge, 'c')}"
# Accounts kept in memory (frozen objects, dropped on every write to them).
_ACCOUNT_CACHE = 10_000

# Marks an audit append: its seq and hashes are filled in the writer, inside the transaction.
_AUDIT = "-- audit append"
_AUDIT_INSERT = (f"INSERT INTO {rows.AUDIT_TABLE} ({', '.join(rows.AUDIT_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(rows.AUDIT_COLUMNS))})")
_AUDIT_HEAD = f"SELECT seq, hash FROM {rows.AUDIT_TABLE} ORDER BY seq DESC LIMIT 1"


def _chain_head(last: Any | None) -> tuple[int, str]:
    """(seq, hash) of the newest audit row, or of the chain's start when there is none."""
    return (last[0], last[1]) if last else (0, audit_chain.GENESIS)


@functools.cache  # a handful of (model, condition) pairs; built on every read otherwise
def _select(model: type, condition: str) -> str:
    return f"SELECT {rows.columns(model)} FROM {rows.TABLES[model][0]} {condition}"


@functools.cache  # a handful of (table, columns) pairs; built on every write otherwise
def _insert_sql(table: str, cols: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"


@functools.cache
def _update_sql(table: str, cols: tuple[str, ...], expect: bool) -> str:
    sets = ", ".join(f"{c} = ?" for c in cols if c != "id")
    return f"UPDATE {table} SET {sets} WHERE id = ?" + (" AND status = ?" if expect else "")


def statements(op: Op) -> list[Statement]:
    """The SQL statements of one operation."""
    if isinstance(op, Spend):
        return [buckets.spend_statement(op)]
    if isinstance(op.model, AuditEvent):
        if not isinstance(op, Insert):
            raise TypeError("audit events are append-only")
        return [(_AUDIT, rows.audit_values(op.model), False)]
    table, cols = rows.TABLES[type(op.model)]
    values = rows.to_row(op.model)
    if isinstance(op, Delete):
        return [(f"DELETE FROM {table} WHERE id = ?", (op.model.id,), False)]
    if isinstance(op, Insert):
        out = [(_insert_sql(table, cols), tuple(values[c] for c in cols), False)]
        if isinstance(op.model, Authorization):
            for chall in op.model.challenges:
                out += statements(Insert(chall))
        return out
    params = tuple(values[c] for c in cols if c != "id") + (op.model.id,)
    if op.expect is not None:
        params += (op.expect,)
    return [(_update_sql(table, cols, op.expect is not None), params, True)]


class _Unit:
    """One caller's all-or-nothing list of statements and the future it waits on."""

    def __init__(self, stmts: list[Statement], future: asyncio.Future[bool]) -> None:
        self.stmts = stmts
        self.future = future
        self.result: bool | BaseException = False
        self.rowcount = 0  # rows changed by the unit's last statement (what a prune counts)


class _Chain:
    """The audit chain's head during one write transaction.

    It is read inside the transaction (which holds SQLite's write lock), so a
    CLI appending from another process between two of our commits is seen.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.head: tuple[int, str] | None = None

    def append(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        if self.head is None:
            self.head = _chain_head(self.conn.execute(_AUDIT_HEAD).fetchone())
        seq, prev = self.head[0] + 1, self.head[1]
        digest = audit_chain.link(prev, (seq, *values))
        self.head = (seq, digest)
        return (seq, *values, prev, digest)


def _run_unit(conn: sqlite3.Connection, unit: _Unit, chain: _Chain) -> bool:
    """Execute one unit's statements; False (and ``unit.result`` says why) when it fails.

    A failed unit leaves its earlier statements applied: the caller undoes them.
    """
    try:
        for sql, params, must_change in unit.stmts:
            if sql == _AUDIT:
                sql, params = _AUDIT_INSERT, chain.append(params)
            unit.rowcount = conn.execute(sql, params).rowcount
            if unit.rowcount == 0 and must_change:
                unit.result = False
                return False
    except sqlite3.IntegrityError as exc:
        unit.result = Conflict(str(exc))
        return False
    unit.result = True
    return True


def _apply_unit(conn: sqlite3.Connection, unit: _Unit, chain: _Chain) -> None:
    """One unit inside its own SAVEPOINT: a failure undoes this unit alone."""
    mark = chain.head
    conn.execute("SAVEPOINT unit")
    try:
        if not _run_unit(conn, unit, chain):
            conn.execute("ROLLBACK TO unit")
            chain.head = mark
    finally:
        conn.execute("RELEASE unit")


def _apply_group(conn: sqlite3.Connection, batch: list[_Unit]) -> None:
    """Every unit of a group, each all-or-nothing, in one open transaction.

    Units almost never fail, so the group first runs without a savepoint per
    unit (two statements fewer each). When one fails, the group goes back to
    its own savepoint and runs again without it: the units before it see the
    same rows as the first time, so they succeed again, and the ones after it
    each get a savepoint, which gives every unit the result it would have had
    alone in order.
    """
    conn.execute("SAVEPOINT grp")
    chain = _Chain(conn)
    failed = next((u for u in batch if not _run_unit(conn, u, chain)), None)
    if failed is None:
        return
    conn.execute("ROLLBACK TO grp")
    chain = _Chain(conn)
    for unit in batch:
        if unit is not failed:
            _apply_unit(conn, unit, chain)


class SQLiteStore:
    """The Store protocol on one SQLite file."""

    def __init__(self, path: Path, group_commit_ms: float = 0.0, *,
                 shared: bool = False, account_changes: ChangeCounter | None = None) -> None:
        self.path = path
        self.group_commit_s = group_commit_ms / 1000
        # Other serving processes write the same file (serve --workers N): accounts are
        # cached only with a count of account changes they all keep (see get_account),
        # and writers take turns through a lock file (see _write_turn).
        self.shared = shared
        self._account_changes = account_changes
        self._turn: int | None = None  # fd of the lock file, when shared
        self._reader: aiosqlite.Connection | None = None
        self._lookup: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[_Unit] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # id → (account changes counted when read, account), oldest first; see get_account
        self._accounts: dict[str, tuple[int, Account]] = {}

    # -- lifecycle -----------------------------------------------------------------

    async def open(self) -> None:
        """Create the file if needed, migrate, start the writer."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        loop = asyncio.get_running_loop()
        self._writer = await loop.run_in_executor(self._executor, self._connect_writer)
        self._reader = await aiosqlite.connect(self.path)
        self._reader.row_factory = aiosqlite.Row
        await self._reader.execute("PRAGMA query_only = ON")
        self._lookup = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # Plain tuples: lookups are decoded by position (rows.columns).
        self._lookup.execute("PRAGMA query_only = ON")
        if self.shared:
            self._turn = os.open(f"{self.path}.writers", os.O_RDWR | os.O_CREAT, 0o600)
        self._task = asyncio.create_task(self._write_loop(), name="sqlite-writer")

    def _connect_writer(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(sqlite_upkeep.AUTO_VACUUM)  # a no-op unless the file is new
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_WAIT_MS}")
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        done = {v for (v,) in conn.execute("SELECT version FROM schema_version")}
        for version, sql in MIGRATIONS:
            if version not in done:
                conn.execute("BEGIN IMMEDIATE")
                for part in sql.replace("BYTEA", "BLOB").split(";"):
                    if part.strip():
                        conn.execute(part)
                conn.execute("INSERT INTO schema_version VALUES (?)", (version,))
                conn.execute("COMMIT")
        # On the loop's thread a taken lock must fail at once (see _begin_here).
        conn.execute("PRAGMA busy_timeout = 0")
        return conn

    async def close(self) -> None:
        """Finish every queued write, then close both connections."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._reader is not None:
            await self._reader.close()
        if self._lookup is not None:
            self._lookup.close()
        if self._writer is not None and self._executor is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._writer.close)
            self._executor.shutdown()
        if self._turn is not None:
            os.close(self._turn)
            self._turn = None

    # -- writes --------------------------------------------------------------------

    async def apply(self, ops: Sequence[Op]) -> bool:
        """Apply ``ops`` atomically; returns once they are committed to disk."""
        stmts = [s for op in ops for s in statements(op)]
        changed = [op.model.id for op in ops
                   if not isinstance(op, Spend) and isinstance(op.model, Account)]
        self._forget_accounts(changed)
        try:
            return await self._submit(stmts)
        finally:
            # Again after the commit: a read during it may have cached the old row.
            self._forget_accounts(changed)

    def _forget_accounts(self, account_ids: list[str]) -> None:
        if not account_ids:
            return
        for account_id in account_ids:
            self._accounts.pop(account_id, None)
        if self._account_changes is not None:
            self._account_changes.add()  # the other processes drop their copies

    async def _submit(self, stmts: list[Statement]) -> bool:
        """Queue one all-or-nothing unit for the next group commit and wait for it."""
        return await self._queue(stmts).future

    def _queue(self, stmts: list[Statement]) -> _Unit:
        unit = _Unit(stmts, asyncio.get_running_loop().create_future())
        self._pending.append(unit)
        self._wake.set()
        return unit

    async def _write_loop(self) -> None:
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            if self.group_commit_s:
                await asyncio.sleep(self.group_commit_s)
            self._wake.clear()
            batch, self._pending = self._pending, []
            if batch:
                await self._commit(loop, batch)
            if self._closing and not self._pending:
                return

    async def _commit(self, loop: asyncio.AbstractEventLoop, batch: list[_Unit]) -> None:
        try:
            try:
                here = self._write_turn(block=False) and self._apply_here(batch)
            except BaseException:
                self._end_turn()
                raise
            if here:
                await loop.run_in_executor(self._executor, self._finish)  # ends the turn
            else:
                self._end_turn()
                await loop.run_in_executor(self._executor, self._commit_batch, batch)
        except Exception as exc:  # the commit itself failed: nobody's change is durable
            for unit in batch:
                if not unit.future.done():
                    unit.future.set_exception(exc)
            return
        for unit in batch:
            if unit.future.done():
                continue
            if isinstance(unit.result, BaseException):
                unit.future.set_exception(unit.result)
            else:
                unit.future.set_result(unit.result)

    def _apply_here(self, batch: list[_Unit]) -> bool:
        """Run the group's statements on this (the loop's) thread, leaving COMMIT to do.

        False, with nothing done, when another process holds the write lock.
        """
        conn = self._writer
        assert conn is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return False
        self._apply_all(conn, batch)
        return True

    def _finish(self) -> None:
        """COMMIT the open transaction (the WAL write and fsync), in the writer thread."""
        conn = self._writer
        assert conn is not None
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            self._end_turn()

    def _write_turn(self, block: bool) -> bool:
        """This process's turn to write, when processes share the file (else always True).

        SQLite's own wait for a write lock sleeps and polls (1, 2, 5 … 100 ms):
        two busy processes would spend most of their time asleep. An flock on a
        side file queues them in the kernel, which wakes the next one as soon
        as the lock is released (also when its holder dies).
        """
        if self._turn is None:
            return True
        try:
            fcntl.flock(self._turn, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return True

    def _end_turn(self) -> None:
        if self._turn is not None:
            fcntl.flock(self._turn, fcntl.LOCK_UN)

    def _commit_batch(self, batch: list[_Unit]) -> None:
        """The whole group in the writer thread, waiting for a lock another process holds."""
        conn = self._writer
        assert conn is not None
        self._write_turn(block=True)
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_WAIT_MS}")
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._apply_all(conn, batch)
            self._finish()
        finally:
            self._end_turn()
            conn.execute("PRAGMA busy_timeout = 0")

    @staticmethod
    def _apply_all(conn: sqlite3.Connection, batch: list[_Unit]) -> None:
        try:
            _apply_group(conn, batch)
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- reads ---------------------------------------------------------------------

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        assert self._reader is not None
        return list(await self._reader.execute_fetchall(sql, tuple(params)))

    def _lookup_rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Rows of an indexed point lookup, read on the event loop's thread.

        A WAL reader never waits for the writer, and a lookup by key on a warm
        page cache takes a few microseconds: less than the ~60 µs of CPU that a
        hop to aiosqlite's thread and back costs. Scans use :meth:`_rows`.
        """
        assert self._lookup is not None
        return self._lookup.execute(sql, tuple(params)).fetchall()

    async def _one(self, sql: str, params: Sequence[Any]) -> Any | None:
        found = self._lookup_rows(sql, params)
        return found[0] if found else None

    async def get_account(self, account_id: str) -> Account | None:
        """One account by id (cached: every signed request reads its account).

        Accounts change only through :meth:`apply` (no CLI command writes
        them), which drops this process's copy before and after the commit, so
        the cache is never stale for a single gateway process. Several
        processes on one file must see a key change or deactivation made in
        any of them at once: each write also adds to the shared count of
        account changes (before and after its commit), and a copy is used only
        while that count is what it was when the copy was read. Shared without
        such a count, nothing is cached.
        """
        changes = self._account_changes.value() if self._account_changes is not None else 0
        cached = self._accounts.get(account_id)
        if cached is not None and cached[0] == changes:
            return cached[1]
        r = await self._one(_select(Account, "WHERE id = ?"), (account_id,))
        if not r:
            return None
        account = rows.account(r)
        if self.shared and self._account_changes is None:
            return account
        if len(self._accounts) >= _ACCOUNT_CACHE:
            del self._accounts[next(iter(self._accounts))]
        self._accounts[account_id] = (changes, account)
        return account

    async def get_account_by_thumbprint(self, thumbprint: str) -> Account | None:
        """The account registered with this key."""
        r = await self._one(_select(Account, "WHERE thumbprint = ?"), (thumbprint,))
        return rows.account(r) if r else None

    async def get_order(self, order_id: str) -> Order | None:
        """One order by id."""
        r = await self._one(_select(Order, "WHERE id = ?"), (order_id,))
        return rows.order(r) if r else None

    async def list_order_ids(self, account_id: str, after: str, limit: int) -> list[str]:
        """An account's order ids, oldest first, after the cursor."""
        sql = ("SELECT id FROM orders WHERE account_id = ? AND rowid > "
               "COALESCE((SELECT rowid FROM orders WHERE id = ?), 0) ORDER BY rowid LIMIT ?")
        return [r["id"] for r in await self._rows(sql, (account_id, after, limit))]

    async def _authzs_where(self, where: str, params: Sequence[Any],
                            lookup: bool = True) -> list[Authorization]:
        # One statement, so authorization and challenges come from one snapshot
        # (two reads could straddle a commit that changed both).
        sql = f"{_AUTHZ_SELECT} FROM (SELECT * FROM authorizations WHERE {where}) " \
              "a LEFT JOIN challenges c ON c.authz_id = a.id ORDER BY c.rowid"
        found = self._lookup_rows(sql, params) if lookup else await self._rows(sql, params)
        heads: dict[str, Any] = {}
        by_authz: dict[str, list[Challenge]] = {}
        for r in found:
            authz_id = r[0]
            if authz_id not in heads:
                heads[authz_id] = r[:_AUTHZ_WIDTH]
                by_authz[authz_id] = []
            if r[_AUTHZ_WIDTH] is not None:  # the LEFT JOIN found a challenge
                by_authz[authz_id].append(rows.challenge(r[_AUTHZ_WIDTH:]))
        return [rows.authorization(r, by_authz[i]) for i, r in heads.items()]

    async def get_authz(self, authz_id: str) -> Authorization | None:
        """One authorization with its challenges."""
        found = await self._authzs_where("id = ?", (authz_id,))
        return found[0] if found else None

    async def get_authzs(self, authz_ids: Sequence[str]) -> list[Authorization]:
        """Several authorizations, in the order asked."""
        if not authz_ids:
            return []
        found = await self._authzs_where(f"id IN ({', '.join('?' * len(authz_ids))})", authz_ids)
        by_id = {a.id: a for a in found}
        return [by_id[i] for i in authz_ids if i in by_id]

    async def get_authz_by_challenge(self, challenge_id: str) -> Authorization | None:
        """The authorization that owns a challenge."""
        found = await self._authzs_where(
            "id = (SELECT authz_id FROM challenges WHERE id = ?)", (challenge_id,))
        return found[0] if found else None

    async def processing_challenges(self) -> list[Authorization]:
        """Authorizations with a challenge being validated."""
        return await self._authzs_where(
            "id IN (SELECT authz_id FROM challenges WHERE status = 'processing')", (),
            lookup=False)

    async def get_certificate(self, cert_id: str) -> Certificate | None:
        """One certificate by id."""
        r = await self._one(_select(Certificate, "WHERE id = ?"), (cert_id,))
        return rows.certificate(r) if r else None

    async def get_certificate_by_serial(self, serial: str) -> Certificate | None:
        """One certificate by hex serial."""
        r = await self._one(_select(Certificate, "WHERE serial = ?"), (serial,))
        return rows.certificate(r) if r else None

    async def certified_csrs(self, spki_sha256: str, limit: int) -> list[bytes]:
        """The CSRs of orders whose certificate carries this public key."""
        found = await self._rows(
            "SELECT o.csr FROM certificates c JOIN orders o ON o.id = c.order_id "
            "WHERE c.spki_sha256 = ? LIMIT ?", (spki_sha256, limit))
        return [bytes(r["csr"]) for r in found if r["csr"] is not None]

    async def get_job(self, order_id: str) -> Job | None:
        """The CA job of an order."""
        r = await self._one(_select(Job, "WHERE order_id = ?"), (order_id,))
        return rows.job(r) if r else None

    async def due_jobs(self, now: datetime, limit: int) -> list[Job]:
        """Jobs whose time has come."""
        found = await self._rows(
            _select(Job, "WHERE state IN ('queued', 'waiting') AND run_at <= ? "
                         "ORDER BY run_at LIMIT ?"), (now.timestamp(), limit))
        return [rows.job(r) for r in found]

    async def claim_job(self, job: Job, until: datetime) -> bool:
        """Compare-and-set of ``run_at`` on an unfinished job (see Store.claim_job)."""
        stmt = ("UPDATE jobs SET run_at = ? WHERE id = ? AND run_at IS ? "
                "AND state IN ('queued', 'waiting')",
                (rows.ts(until), job.id, rows.ts(job.run_at)), True)
        return await self._submit([stmt])

    async def get_eab_key(self, kid: str) -> EabKey | None:
        """One EAB key by key identifier."""
        r = await self._one(_select(EabKey, "WHERE id = ?"), (kid,))
        return rows.eab_key(r) if r else None

    async def list_eab_keys(self) -> list[EabKey]:
        """Every EAB key, oldest first."""
        return [rows.eab_key(r) for r in await self._rows(
            _select(EabKey, "ORDER BY created_at, id"))]

    async def orders_awaiting_approval(self, limit: int) -> list[Order]:
        """Orders held for an approver, oldest first."""
        found = await self._rows(
            _select(Order, "WHERE approval = 'pending' AND status = 'processing' "
                           "ORDER BY created_at LIMIT ?"), (limit,))
        return [rows.order(r) for r in found]

    async def buckets_full_at(self, keys: Sequence[str]) -> dict[str, datetime]:
        """When each named rate-limit bucket is full again (absent: never spent, or forgotten)."""
        if not keys:
            return {}
        found = self._lookup_rows(buckets.full_at_query(len(keys)), keys)
        return {key: datetime.fromtimestamp(full_at, UTC) for key, full_at in found}

    async def forget_full_buckets(self, now: datetime) -> None:
        """Drop the rate-limit buckets that are full by ``now``."""
        await self._submit([(buckets.FORGET_FULL, (now.timestamp(),), False)])

    async def audit_rows(self, after_seq: int, limit: int, since: datetime | None = None,
                         until: datetime | None = None) -> list[dict[str, Any]]:
        """Raw audit rows after ``after_seq``, optionally within [since, until)."""
        where: list[str] = ["seq > ?"]
        params: list[Any] = [after_seq]
        if since is not None:
            where.append("at >= ?")
            params.append(since.timestamp())
        if until is not None:
            where.append("at < ?")
            params.append(until.timestamp())
        found = await self._rows(
            f"SELECT * FROM {rows.AUDIT_TABLE} WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?",
            (*params, limit))
        return [dict(r) for r in found]

    async def audit_head(self) -> tuple[int, str]:
        """The newest committed audit row's seq and hash (what an anchor signs)."""
        return _chain_head(await self._one(_AUDIT_HEAD, ()))

    # -- retention -----------------------------------------------------------------

    async def prune(self, kind: str, before: datetime, limit: int, *,
                    dry_run: bool = False) -> int:
        """Remove (or count) up to ``limit`` records of ``kind`` past ``before``."""
        params = (before.timestamp(), limit)
        if dry_run:
            return int((await self._rows(retention.count_statement(kind), params))[0][0])
        return await self._remove([(sql, params, False)
                                   for sql in retention.delete_statements(kind)], limit)

    async def _remove(self, stmts: list[Statement], most_pages: int) -> int:
        """Run deletes as one unit; the rows the last one removed. Free pages go back after."""
        unit = self._queue(stmts)
        await unit.future
        if unit.rowcount:
            await self._give_back_pages(most_pages)
        return unit.rowcount

    async def _give_back_pages(self, most: int) -> None:
        """Return free pages to the file system in a unit of their own (see sqlite_upkeep)."""
        assert self._lookup is not None
        pages = sqlite_upkeep.pages_to_give_back(self._lookup, most)
        if pages:
            await self._submit([(sqlite_upkeep.VACUUM_PAGE, (), False)] * pages)

    async def drop_archived_audit(self, through_seq: int, through_hash: str, limit: int) -> int:
        """Remove archived audit rows (see Store.drop_archived_audit)."""
        return await self._remove([(retention.DROP_ARCHIVED_AUDIT,
                                    (through_seq, limit, through_seq, through_hash), False)],
                                  limit)

    async def table_stats(self) -> DatabaseStats:
        """Rows and bytes per table, read on a connection of its own off the event loop."""
        def read() -> DatabaseStats:
            conn = sqlite3.connect(f"file:{urllib.parse.quote(str(self.path))}?mode=ro",
                                   uri=True)
            try:
                return sqlite_upkeep.database_stats(conn)
            finally:
                conn.close()

        return await asyncio.to_thread(read)
