"""The local CA's own ledger: which serials it issued and which it revoked.

A small SQLite file next to the CA certificate, driven by the stdlib ``sqlite3``
module in one dedicated thread (connectors never import the gateway's store).
Every serial is committed before its certificate leaves the connector.

An issuance record is committed on the event loop itself when the database's
write lock is free at that instant (``busy_timeout`` 0, never waiting): in WAL
mode with ``synchronous=NORMAL`` that commit appends to the WAL without an
fsync, which costs less than the hop to the ledger's thread and back. When the
lock is held (a revocation, a CRL snapshot, another worker's write) or the
attempt fails in any way, the record goes to the thread, where records are
group-committed: concurrent issuances wait for one shared commit. Checkpoints,
which do fsync, never run on the loop: that connection has automatic
checkpoints off, and the thread runs one every ``CHECKPOINT_EVERY`` records.

Several worker processes may share one ledger (``serve --workers N``). Every
write that must be ordered against another process's writes runs inside
``BEGIN IMMEDIATE``, which takes SQLite's database-wide write lock at once (the
connection waits up to sqlite3's default 5 s busy timeout for it), so two
processes never interleave a read-modify-write of the same rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from connectors.base import CAUnavailable

T = TypeVar("T")

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS issued (
    serial TEXT PRIMARY KEY, not_after INTEGER NOT NULL, request_id TEXT NOT NULL, der BLOB);
CREATE TABLE IF NOT EXISTS revoked (
    serial TEXT PRIMARY KEY, reason INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL, not_after INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


# Counters in the meta table: the CRL number, revocations recorded, and how many of those
# the newest CRL number's snapshot saw.
_BUMP = "INSERT INTO meta VALUES (?, 1) ON CONFLICT(key) DO UPDATE SET value = value + 1"
_SET = "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"
_META_KEYS = ("crl_number", "crl_covered", "revocations")
_META = "SELECT key, value FROM meta WHERE key IN (?, ?, ?)"
_INSERT_ISSUED = ("INSERT OR IGNORE INTO issued (serial, not_after, request_id, der) "
                  "VALUES (?, ?, ?, ?)")
# Records committed on the event loop between two checkpoints run in the thread
# (SQLite's own automatic checkpoint comes after about 1000 WAL pages; a record
# writes two or three).
CHECKPOINT_EVERY = 300


@dataclass(frozen=True)
class RevokedEntry:
    """One revoked certificate as the CRL and OCSP need it."""

    serial: int
    reason: int
    revoked_at: datetime


@dataclass(frozen=True)
class CRLSnapshot:
    """A freshly allocated CRL number and the revocations that CRL must list."""

    number: int
    entries: list[RevokedEntry]


@dataclass(frozen=True)
class CRLState:
    """How far the CRLs of every process sharing the ledger have got.

    ``number`` is the newest CRL number allocated (0 before the first), ``covered``
    the value the revocation counter had when that number was allocated, and
    ``revocations`` the counter now: when it is ahead of ``covered``, a revocation
    was recorded that no allocated CRL number lists yet.
    """

    number: int
    covered: int
    revocations: int

    @property
    def uncovered(self) -> bool:
        """Whether a recorded revocation is missing from every CRL allocated so far."""
        return self.revocations > self.covered


@dataclass(frozen=True)
class SerialStatus:
    """What the ledger knows about one serial: ``good``, ``revoked`` or ``unknown``."""

    state: str
    revoked: RevokedEntry | None = None


def _hex(serial: int) -> str:
    return format(serial, "x")


def _ts(when: datetime) -> int:
    return int(when.timestamp())


def _dt(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class CALedger:
    """Issued and revoked serials of one CA, persisted in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[str, int, str, bytes | None]] = []
        self._batch: asyncio.Future[None] | None = None
        self._flushing = False
        self._loop_db: sqlite3.Connection | None = None  # used on the event loop only
        self._since_checkpoint = 0
        self._checkpointing: asyncio.Future[None] | None = None

    async def open(self) -> None:
        """Open (creating if needed) the database in its own thread."""
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="localca-ledger")
        await self._run(self._open_sync)

    def _open_sync(self) -> None:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash; only a power loss may drop the last commit.
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(issued)")}
        if "der" not in columns:  # a ledger from before certificates were kept
            db.execute("ALTER TABLE issued ADD COLUMN der BLOB")
        db.execute("CREATE INDEX IF NOT EXISTS issued_request ON issued (request_id)")
        self._db = db
        # Set up here, where waiting is allowed (workers starting together may briefly
        # lock the file); then busy_timeout 0: on the loop a held lock is reported at once.
        loop_db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        loop_db.execute("PRAGMA synchronous=NORMAL")
        loop_db.execute("PRAGMA wal_autocheckpoint=0")
        loop_db.execute("PRAGMA busy_timeout=0")
        self._loop_db = loop_db

    async def close(self) -> None:
        """Flush what is queued, close the database and stop the thread."""
        if self._executor is None:
            return
        while self._pending or self._flushing:
            await self._flush()
        if self._checkpointing is not None:
            await self._checkpointing
        if self._loop_db is not None:
            await self._run(self._loop_db.close)
            self._loop_db = None
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)
        self._executor = None

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise CAUnavailable(f"the CA ledger {self.path} is not open; start the connector")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        except sqlite3.Error as exc:
            raise CAUnavailable(
                f"the CA ledger {self.path} failed: {exc}; check the disk and file permissions"
            ) from exc

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the CA ledger is not open")
        return self._db

    async def record_issued(self, serial: int, not_after: datetime, request_id: str,
                            der: bytes | None = None) -> None:
        """Persist one issued serial (and its certificate): at once if the write lock is
        free, else in the thread, where concurrent callers share one commit."""
        row = (_hex(serial), _ts(not_after), request_id, der)
        if self._commit_here(row):
            return
        self._pending.append(row)
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
        batch = self._batch
        if not self._flushing:
            asyncio.ensure_future(self._flush())
        await batch

    async def _flush(self) -> None:
        if self._flushing or not self._pending:
            return
        self._flushing = True
        rows, self._pending = self._pending, []
        batch, self._batch = self._batch, None
        try:
            await self._run(lambda: self._insert_issued(rows))
        except Exception as exc:  # noqa: BLE001 - handed to every waiter of this batch
            if batch is not None and not batch.done():
                batch.set_exception(exc)
        else:
            if batch is not None and not batch.done():
                batch.set_result(None)
        finally:
            self._flushing = False
        if self._pending:
            asyncio.ensure_future(self._flush())

    def _commit_here(self, row: tuple[str, int, str, bytes | None]) -> bool:
        """Commit one issuance record on the calling thread, if that needs no waiting.

        False when the write lock is held or anything fails: the caller then hands
        the record to the ledger's thread, which retries it and reports real errors.
        """
        db = self._loop_db
        if db is None or self._executor is None:
            return False
        # One statement in autocommit mode is its own transaction: it takes the write
        # lock (failing at once when another holds it) and commits as it ends, the
        # same as BEGIN IMMEDIATE, INSERT, COMMIT for a single row, in one call.
        try:
            db.execute(_INSERT_ISSUED, row)
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):  # never leave a transaction open here
                if db.in_transaction:
                    db.execute("ROLLBACK")
            return False
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_EVERY and self._checkpointing is None:
            self._since_checkpoint = 0
            self._checkpointing = asyncio.ensure_future(self._checkpoint())
        return True

    async def _checkpoint(self) -> None:
        """Move the WAL's pages into the database, in the thread (it fsyncs)."""
        try:
            # fetchall: an unread result row leaves the statement in progress on the
            # thread's connection, and the next group's COMMIT would then fail.
            await self._run(
                lambda: self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall())
        except CAUnavailable as exc:  # the next checkpoint (or SQLite's own) catches up
            log.warning("CA ledger checkpoint failed: %s", exc)
        finally:
            self._checkpointing = None

    def _insert_issued(self, rows: list[tuple[str, int, str, bytes | None]]) -> None:
        db = self._conn()
        with db:
            db.execute("BEGIN")
            db.executemany(_INSERT_ISSUED, rows)

    async def issued_for(self, request_id: str) -> bytes | None:
        """The certificate (DER) issued earlier for ``request_id``, if one was kept."""

        def select() -> bytes | None:
            row = self._conn().execute(
                "SELECT der FROM issued WHERE request_id = ? AND der IS NOT NULL "
                "ORDER BY rowid LIMIT 1", (request_id,)).fetchone()
            return bytes(row[0]) if row else None

        return await self._run(select)

    async def revoke(self, serial: int, reason: int, when: datetime, not_after: datetime) -> bool:
        """Record a revocation; False when the serial was revoked already."""
        row = (_hex(serial), reason, _ts(when), _ts(not_after))

        def insert() -> bool:
            db = self._conn()
            with db:
                db.execute("BEGIN IMMEDIATE")
                cur = db.execute("INSERT OR IGNORE INTO revoked VALUES (?, ?, ?, ?)", row)
                if cur.rowcount != 1:
                    return False
                # A counter, not MAX(rowid): it stays monotonic even if expired rows are pruned.
                db.execute(_BUMP, ("revocations",))
                return True

        return await self._run(insert)

    async def revoked_entries(self, now: datetime) -> list[RevokedEntry]:
        """Revocations of unexpired certificates (RFC 5280 §3.3 lets expired ones go)."""

        def select() -> list[tuple[str, int, int]]:
            sql = "SELECT serial, reason, revoked_at FROM revoked WHERE not_after >= ?"
            return list(self._conn().execute(sql, (_ts(now),)))

        rows = await self._run(select)
        return [RevokedEntry(int(s, 16), reason, _dt(at)) for s, reason, at in rows]

    async def status(self, serial: int) -> SerialStatus:
        """Whether this CA issued ``serial`` and whether it is revoked."""
        key = _hex(serial)
        pending = any(row[0] == key for row in self._pending)

        def select() -> tuple[tuple[int, int] | None, bool]:
            db = self._conn()
            rev = db.execute(
                "SELECT reason, revoked_at FROM revoked WHERE serial = ?", (key,)
            ).fetchone()
            issued = db.execute("SELECT 1 FROM issued WHERE serial = ?", (key,)).fetchone()
            return rev, issued is not None

        rev, issued = await self._run(select)
        if rev is not None:
            return SerialStatus("revoked", RevokedEntry(serial, rev[0], _dt(rev[1])))
        return SerialStatus("good" if issued or pending else "unknown")

    async def crl_snapshot(self, now: datetime) -> CRLSnapshot:
        """Allocate the next CRL number and read the revocations that CRL lists, atomically.

        CRL numbers must increase (RFC 5280 §5.2.3) across every process sharing the
        ledger, and a higher number must never list less than a lower one. Both hold
        because the number is bumped and the revocations read in one ``BEGIN IMMEDIATE``
        transaction, and :meth:`revoke` takes the same lock: any revocation is either
        seen by this snapshot or committed after it, and then whoever recorded it
        allocates a higher number for its own CRL. (Reading the revocations before
        bumping the number in separate transactions would let another process's
        revocation fall between them: a higher number with an older list.)
        """

        def snapshot() -> tuple[int, list[tuple[str, int, int]]]:
            db = self._conn()
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.execute(_BUMP, ("crl_number",))
                meta = dict(db.execute(_META, _META_KEYS).fetchall())
                db.execute(_SET, ("crl_covered", meta.get("revocations", 0)))
                sql = "SELECT serial, reason, revoked_at FROM revoked WHERE not_after >= ?"
                rows = list(db.execute(sql, (_ts(now),)))
                return int(meta["crl_number"]), rows

        number, rows = await self._run(snapshot)
        entries = [RevokedEntry(int(s, 16), reason, _dt(at)) for s, reason, at in rows]
        return CRLSnapshot(number, entries)

    async def crl_state(self) -> CRLState:
        """The newest CRL number allocated and the revocation counters; one cheap read."""

        def select() -> dict[str, int]:
            return dict(self._conn().execute(_META, _META_KEYS).fetchall())

        meta = await self._run(select)
        return CRLState(
            meta.get("crl_number", 0), meta.get("crl_covered", 0), meta.get("revocations", 0)
        )

    async def exclusive(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the ledger's thread while holding the database's write lock.

        A lock shared by every process that opens this ledger; other processes'
        writes (issuances too) wait for it, so ``fn`` must be short, and it must not
        call back into the ledger (it runs in the ledger's only thread).
        """

        def locked() -> T:
            db = self._conn()
            with db:
                db.execute("BEGIN IMMEDIATE")
                return fn()

        return await self._run(locked)

    async def share_crl(self, number: int, der: bytes) -> None:
        """Nothing to do: processes on one host share crl.der (see LocalCAConnector)."""

    async def shared_crl(self) -> bytes | None:
        """None: the newest CRL of this host's processes is crl.der."""
        return None

    async def counts(self) -> tuple[int, int]:
        """How many serials were issued and revoked (for ``ca info``)."""

        def count() -> tuple[int, int]:
            db = self._conn()
            issued = db.execute("SELECT COUNT(*) FROM issued").fetchone()[0]
            revoked = db.execute("SELECT COUNT(*) FROM revoked").fetchone()[0]
            return int(issued), int(revoked)

        return await self._run(count)
