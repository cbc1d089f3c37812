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
a thread each release is a GIL hand-over with the busy loop. Serving processes
sharing the file take turns through a lock file: while another one writes, the
writer thread waits for the turn and the group (with the units that came
meanwhile) then runs on the loop all the same. When another program (a CLI)
holds SQLite's write lock, the whole group goes to the writer thread, which may
wait for it (busy_timeout) without stalling the loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from gateway.model.changes import ChangeCounter
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
from gateway.model.store import DatabaseStats, Op, Spend, StoreUnavailable
from gateway.storage import buckets, inventory, renewals, retention, rows, sqlite_upkeep
from gateway.storage.schema import MIGRATIONS
from gateway.storage.sqlite_thread import WriterThread
from gateway.storage.sqlite_turn import WriteTurn
from gateway.storage.sqlite_units import (
    AUDIT_HEAD,
    Unit,
    apply_group_or_roll_back,
    bind_plainly,
    chain_head,
)
from gateway.storage.sqltext import AUTHZ_PACKED, AUTHZ_PACKED_WITH_ORDER, Statement, statements
from gateway.storage.sqltext import select as _select

# How long the writer thread waits for a write lock held by another process (a CLI).
_BUSY_WAIT_MS = 5000
# Accounts kept in memory (frozen objects, dropped on every write to them), and for how
# long at most: a change written by another process (the CLI) is seen after this.
_ACCOUNT_CACHE = 10_000
_ACCOUNT_CACHE_SECONDS = 5.0
_monotonic = time.monotonic

class SQLiteStore:
    """The Store protocol on one SQLite file."""

    def __init__(self, path: Path, group_commit_ms: float = 0.0, *,
                 shared: bool = False, account_changes: ChangeCounter | None = None) -> None:
        self.path = path
        self.group_commit_s = group_commit_ms / 1000
        # Other serving processes write the same file (serve --workers N): accounts are
        # cached only with a count of account changes they all keep (see get_account),
        # and writers take turns through a lock file (see sqlite_turn).
        self.shared = shared
        self._account_changes = account_changes
        self._turn = WriteTurn()
        self._reader: aiosqlite.Connection | None = None
        self._lookup: sqlite3.Connection | None = None
        # One cursor for every lookup: conn.execute makes and drops one per statement.
        self._finder: sqlite3.Cursor | None = None
        self._writer: sqlite3.Connection | None = None
        self._thread: WriterThread | None = None
        self._pending: list[Unit] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # id → (account changes counted when read, kept until (monotonic), account),
        # oldest first; see get_account
        self._accounts: dict[str, tuple[int, float, Account]] = {}

    # -- lifecycle -----------------------------------------------------------------

    async def open(self) -> None:
        """Create the file if needed, migrate, start the writer."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        bind_plainly()
        self._thread = WriterThread("sqlite-writer")
        self._thread.start(asyncio.get_running_loop())
        self._writer = await self._thread.run(self._connect_writer)
        self._reader = await aiosqlite.connect(self.path)
        self._reader.row_factory = aiosqlite.Row
        await self._reader.execute("PRAGMA query_only = ON")
        self._lookup = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # Plain tuples: lookups are decoded by position (rows.columns).
        self._lookup.execute("PRAGMA query_only = ON")
        self._finder = self._lookup.cursor()
        if self.shared:
            self._turn.open(self.path)
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

    async def ping(self) -> None:
        """A read on the lookup connection (a file that went away or went bad fails it)."""
        try:
            self._lookup_rows("SELECT count(*) FROM schema_version", ())
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.path}: {exc}") from exc

    async def close(self) -> None:
        """Finish every queued write, then close both connections."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        # Each part is let go once closed: closing twice is harmless.
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        if self._lookup is not None:
            self._lookup.close()
            self._lookup = self._finder = None
        if self._writer is not None and self._thread is not None:
            await self._thread.run(self._writer.close)
            self._thread.stop()
            self._writer = self._thread = None
        self._turn.close()

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

    def _queue(self, stmts: list[Statement]) -> Unit:
        unit = Unit(stmts, asyncio.get_running_loop().create_future())
        self._pending.append(unit)
        self._wake.set()
        return unit

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            if self.group_commit_s:
                await asyncio.sleep(self.group_commit_s)
            self._wake.clear()
            batch, self._pending = self._pending, []
            if batch:
                await self._commit(batch)
            if self._closing and not self._pending:
                return

    async def _commit(self, batch: list[Unit]) -> None:
        thread = self._thread
        assert thread is not None
        try:
            if not self._turn.take(block=False):
                # Another worker is writing: wait for its turn in the writer thread,
                # then run the group here all the same, with the units that came
                # meanwhile. Run in the thread, each statement would be a GIL
                # hand-over with this busy loop, and the lock would be held longer.
                await self._wait_for_turn()
                batch.extend(self._pending)
                self._pending.clear()
            try:
                here = self._apply_here(batch)
            except BaseException:
                self._turn.end()
                raise
            if here:
                await thread.run(self._finish)  # ends the turn
            else:
                self._turn.end()
                await thread.run(lambda: self._commit_batch(batch))
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

    async def _wait_for_turn(self) -> None:
        """Take the write turn, waiting in the writer thread while another worker has it."""
        thread = self._thread
        assert thread is not None
        try:
            await thread.run(lambda: self._turn.take(True))
        except asyncio.CancelledError:
            # Cancelled while the thread still waits: the thread runs calls in order,
            # so this gives the turn back right after it is taken.
            thread.run(self._turn.end)
            raise

    def _apply_here(self, batch: list[Unit]) -> bool:
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
        apply_group_or_roll_back(conn, batch)
        return True

    def _finish(self) -> None:
        """COMMIT the open transaction (the WAL write and fsync), in the writer thread.

        None is open only when a group of one unit failed and was rolled back whole
        (a failed statement never ends the transaction itself: no statement or table
        asks for ON CONFLICT ROLLBACK, and other errors raise before the group gets here).
        """
        conn = self._writer
        assert conn is not None
        try:
            if conn.in_transaction:
                conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            self._turn.end()

    def _commit_batch(self, batch: list[Unit]) -> None:
        """The whole group in the writer thread, waiting for a lock another process holds."""
        conn = self._writer
        assert conn is not None
        self._turn.take(block=True)
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_WAIT_MS}")
        try:
            conn.execute("BEGIN IMMEDIATE")
            apply_group_or_roll_back(conn, batch)
            self._finish()
        finally:
            self._turn.end()
            conn.execute("PRAGMA busy_timeout = 0")

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
        assert self._finder is not None
        return self._finder.execute(sql, tuple(params)).fetchall()

    def _one(self, sql: str, params: Sequence[Any]) -> Any | None:
        # Not a coroutine: it never waits, and every read of a record goes through it.
        found = self._lookup_rows(sql, params)
        return found[0] if found else None

    async def get_account(self, account_id: str) -> Account | None:
        """One account by id (cached: every signed request reads its account).

        Accounts change through :meth:`apply`, which drops this process's copy
        before and after the commit. An operator's ``accounts deactivate``
        writes from another process, unseen here: a copy is therefore kept at
        most ``_ACCOUNT_CACHE_SECONDS``, after which the row is read again. Several
        processes on one file must see a key change or deactivation made in
        any of them at once: each write also adds to the shared count of
        account changes (before and after its commit), and a copy is used only
        while that count is what it was when the copy was read. Shared without
        such a count, nothing is cached.
        """
        changes = self._account_changes.value() if self._account_changes is not None else 0
        cached = self._accounts.get(account_id)
        now = _monotonic()
        if cached is not None and cached[0] == changes and now < cached[1]:
            return cached[2]
        r = self._one(_select(Account, "WHERE id = ?"), (account_id,))
        if not r:
            return None
        account = rows.account(r)
        if self.shared and self._account_changes is None:
            return account
        if len(self._accounts) >= _ACCOUNT_CACHE:
            del self._accounts[next(iter(self._accounts))]
        self._accounts[account_id] = (changes, now + _ACCOUNT_CACHE_SECONDS, account)
        return account

    async def get_account_by_thumbprint(self, thumbprint: str) -> Account | None:
        """The account registered with this key."""
        r = self._one(_select(Account, "WHERE thumbprint = ?"), (thumbprint,))
        return rows.account(r) if r else None

    async def get_order(self, order_id: str) -> Order | None:
        """One order by id."""
        r = self._one(_select(Order, "WHERE id = ?"), (order_id,))
        return rows.order(r) if r else None

    async def list_order_ids(self, account_id: str, after: str, limit: int) -> list[str]:
        """An account's order ids, oldest first, after the cursor."""
        sql = ("SELECT id FROM orders WHERE account_id = ? AND rowid > "
               "COALESCE((SELECT rowid FROM orders WHERE id = ?), 0) ORDER BY rowid LIMIT ?")
        return [r["id"] for r in await self._rows(sql, (account_id, after, limit))]

    def _authzs_where(self, where: str, params: Sequence[Any]) -> list[Authorization]:
        # One statement, so authorization and challenges come from one snapshot (two
        # reads could straddle a commit that changed both). Not a coroutine: it never waits.
        return [rows.packed_authorization(r)
                for r in self._lookup_rows(f"{AUTHZ_PACKED} WHERE {where}", params)]

    async def get_authz(self, authz_id: str) -> Authorization | None:
        """One authorization with its challenges."""
        found = self._authzs_where("id = ?", (authz_id,))
        return found[0] if found else None

    async def get_authzs(self, authz_ids: Sequence[str]) -> list[Authorization]:
        """Several authorizations, in the order asked."""
        if not authz_ids:
            return []
        found = self._authzs_where(f"id IN ({', '.join('?' * len(authz_ids))})", authz_ids)
        by_id = {a.id: a for a in found}
        return [by_id[i] for i in authz_ids if i in by_id]

    async def get_authz_by_challenge(self, challenge_id: str) -> Authorization | None:
        """The authorization that owns a challenge."""
        found = self._authzs_where(
            "id = (SELECT authz_id FROM challenges WHERE id = ?)", (challenge_id,))
        return found[0] if found else None

    async def get_authz_and_order_by_challenge(
            self, challenge_id: str) -> tuple[Authorization, Order | None] | None:
        """The authorization that owns a challenge, and its order, in one lookup."""
        found = self._lookup_rows(f"{AUTHZ_PACKED_WITH_ORDER} WHERE a.id = "
                                  "(SELECT authz_id FROM challenges WHERE id = ?)", (challenge_id,))
        return rows.packed_authorization_and_order(found[0]) if found else None

    async def processing_challenges(self) -> list[Authorization]:
        """Authorizations with a challenge being validated."""
        found = await self._rows(f"{AUTHZ_PACKED} WHERE id IN "
                                 "(SELECT authz_id FROM challenges WHERE status = 'processing')")
        return [rows.packed_authorization(tuple(r)) for r in found]

    async def get_certificate(self, cert_id: str) -> Certificate | None:
        """One certificate by id."""
        r = self._one(_select(Certificate, "WHERE id = ?"), (cert_id,))
        return rows.certificate(r) if r else None

    async def get_certificate_by_serial(self, serial: str) -> Certificate | None:
        """One certificate by hex serial."""
        r = self._one(_select(Certificate, "WHERE serial = ?"), (serial,))
        return rows.certificate(r) if r else None

    async def certified_csrs(self, spki_sha256: str, limit: int) -> list[bytes]:
        """The CSRs of orders whose certificate carries this public key."""
        found = await self._rows(
            "SELECT o.csr FROM certificates c JOIN orders o ON o.id = c.order_id "
            "WHERE c.spki_sha256 = ? LIMIT ?", (spki_sha256, limit))
        return [bytes(r["csr"]) for r in found if r["csr"] is not None]

    async def order_replacing(self, cert_id: str) -> Order | None:
        """The newest order, not invalid, that replaces this ARI certID."""
        r = self._one(_select(Order, renewals.REPLACING), (cert_id,))
        return rows.order(r) if r else None

    async def get_renewal_advice(self, certificate_id: str) -> RenewalAdvice | None:
        """The advice to renew a certificate now, if any."""
        r = self._one(_select(RenewalAdvice, "WHERE id = ?"), (certificate_id,))
        return rows.renewal_advice(r) if r else None

    async def live_certificates(self, now: datetime) -> list[tuple[Certificate, Order]]:
        """Unexpired, unrevoked certificates with their orders."""
        found = await self._rows(renewals.live_query(rows.columns(Certificate, "c"),
                                                     rows.columns(Order, "o")),
                                 (now.timestamp(),))
        width = len(rows.TABLES[Certificate][1])
        return [(rows.certificate(tuple(r)[:width]), rows.order(tuple(r)[width:]))
                for r in found]

    async def find_certificates(self, query: CertificateQuery,
                                now: datetime) -> list[tuple[Certificate, Order]]:
        """Certificates matching an operator's search, with their orders."""
        sql, params = inventory.certificate_search(query, now)
        found = await self._rows(sql, params)
        return [inventory.certificate_with_order(tuple(r)) for r in found]

    async def count_certificates(self, query: CertificateQuery, now: datetime) -> int:
        """How many certificates match an operator's search."""
        sql, params = inventory.certificate_count(query, now)
        return int((await self._rows(sql, params))[0][0])

    async def count_jobs(self) -> dict[str, int]:
        """Unfinished CA jobs by state."""
        return {state: int(n) for state, n in await self._rows(inventory.JOB_COUNTS)}

    async def list_accounts(self, status: str, limit: int) -> list[Account]:
        """ACME accounts, newest first."""
        sql, params = inventory.account_list(status, limit)
        return [rows.account(tuple(r)) for r in await self._rows(sql, params)]

    async def audit_of_request(self, request_id: str, limit: int) -> list[dict[str, Any]]:
        """One request's audit rows, oldest first."""
        sql, params = inventory.request_audit(request_id, limit)
        return [dict(r) for r in await self._rows(sql, params)]

    async def get_job(self, order_id: str) -> Job | None:
        """The CA job of an order."""
        r = self._one(_select(Job, "WHERE order_id = ?"), (order_id,))
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
        r = self._one(_select(EabKey, "WHERE id = ?"), (kid,))
        return rows.eab_key(r) if r else None

    async def list_eab_keys(self) -> list[EabKey]:
        """Every EAB key, oldest first."""
        return [rows.eab_key(r) for r in await self._rows(
            _select(EabKey, "ORDER BY created_at, id"))]

    async def get_scep_otp(self, otp_id: str) -> ScepOtp | None:
        """One SCEP one-time password by the SHA-256 of its value."""
        r = self._one(_select(ScepOtp, "WHERE id = ?"), (otp_id,))
        return rows.scep_otp(r) if r else None

    async def get_scep_transaction(self, transaction_key: str) -> ScepTransaction | None:
        """The order a SCEP transaction (label and transactionID) is bound to."""
        r = self._one(_select(ScepTransaction, "WHERE id = ?"), (transaction_key,))
        return rows.scep_transaction(r) if r else None

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
        return chain_head(self._one(AUDIT_HEAD, ()))

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
        return await asyncio.to_thread(sqlite_upkeep.stats_of_file, self.path)
