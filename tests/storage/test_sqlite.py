"""What only the SQLite store does: grouped commits, its lock file, its account cache, migrations.

The behaviour every store shares is in test_contract.py.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from gateway import audit_report
from gateway.model.changes import ChangeCounter
from gateway.model.records import (
    PENDING,
    READY,
    AuditEvent,
    Job,
)
from gateway.model.store import Conflict, Insert, Update
from gateway.storage.sqlite import SQLiteStore
from gateway.storage.sqlite_units import bind_plainly
from tests.storage.models import NOW, account, authz, order


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = SQLiteStore(tmp_path / "gw.db")
    await s.open()
    yield s
    await s.close()


async def test_a_failed_unit_in_a_group_leaves_the_others_and_the_audit_chain_whole(
        store: SQLiteStore) -> None:
    await store.apply([Insert(account("a1")), Insert(order("o1"))])
    event = AuditEvent(event="test", at=NOW)
    ready = order("o1").moved(READY)
    # Submitted together, so they share one transaction. The second unit's compare-and-set
    # fails because the first one (same group, earlier) moved the order.
    results = await asyncio.gather(
        store.apply([Insert(replace(event, detail="first")), Update(ready, expect=PENDING)]),
        store.apply([Insert(replace(event, detail="second")),
                     Insert(Job(id="j1", order_id="o1", run_at=NOW)),
                     Update(replace(ready, profile="stale"), expect=PENDING)]),
        store.apply([Insert(replace(event, detail="third")), Insert(order("o2"))]),
        store.apply([Insert(replace(event, detail="fourth")), Insert(account("a1"))]),
        store.apply([Insert(replace(event, detail="fifth"))]),
        return_exceptions=True)
    assert results[0] is True and results[1] is False and results[2] is True
    assert isinstance(results[3], Conflict) and results[4] is True
    assert (await store.get_order("o1")).status == READY  # type: ignore[union-attr]
    assert await store.get_job("o1") is None
    assert await store.get_order("o2") is not None
    assert [r["detail"] for r in await store.audit_rows(0, 10)] == ["first", "third", "fifth"]
    check = await audit_report.verify(store)
    assert check.problems == [] and check.rows == 3


async def test_a_failed_unit_alone_in_its_group_is_rolled_back_whole(store: SQLiteStore) -> None:
    await store.apply([Insert(account("a1")), Insert(order("o1"))])
    event = AuditEvent(event="test", at=NOW)
    # Alone in its group (no savepoint): the audit row and the job written before the
    # failed compare-and-set are undone, and the next group commits as usual.
    assert not await store.apply([Insert(replace(event, detail="lost")),
                                  Insert(Job(id="j1", order_id="o1", run_at=NOW)),
                                  Update(order("o1").moved(READY), expect=READY)])
    with pytest.raises(Conflict):
        await store.apply([Insert(replace(event, detail="lost too")), Insert(account("a1"))])
    assert await store.get_job("o1") is None
    assert await store.apply([Insert(replace(event, detail="kept")),
                              Update(order("o1").moved(READY), expect=PENDING)])
    assert (await store.get_order("o1")).status == READY  # type: ignore[union-attr]
    assert [r["detail"] for r in await store.audit_rows(0, 10)] == ["kept"]
    check = await audit_report.verify(store)
    assert check.problems == [] and check.rows == 1


async def test_write_lock_held_elsewhere_is_waited_for_off_the_loop(tmp_path: Path) -> None:
    """A CLI holding the write lock delays a commit; the loop keeps serving meanwhile."""
    s = SQLiteStore(tmp_path / "gw.db")
    await s.open()
    other = sqlite3.connect(tmp_path / "gw.db", isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        pending = asyncio.ensure_future(s.apply([Insert(account("a1"))]))
        ticks = 0
        for _ in range(10):  # the loop runs while the writer thread waits for the lock
            await asyncio.sleep(0.01)
            ticks += 1
        assert not pending.done() and ticks == 10
        other.execute("COMMIT")
        assert await asyncio.wait_for(pending, 5) is True
        assert await s.get_account("a1") == account("a1")
        # and the next group runs on the loop's thread again
        assert await s.apply([Insert(order("o1"))])
    finally:
        other.close()
        await s.close()


async def test_account_reads_follow_every_write(store: SQLiteStore) -> None:
    """get_account is served from memory, but never returns a row older than a write."""
    await store.apply([Insert(account("a1"))])
    assert await store.get_account("a1") == account("a1")
    moved = replace(account("a1"), status="deactivated")
    write = asyncio.ensure_future(store.apply([Update(moved, expect="valid")]))
    await asyncio.sleep(0)
    await store.get_account("a1")  # a read while the write commits
    assert await write
    assert await store.get_account("a1") == moved
    assert await store.get_account("missing") is None


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[SQLiteStore, SQLiteStore]]:
    """Two stores on one file, as two serving processes would hold it."""
    changes = ChangeCounter(2)
    first = SQLiteStore(tmp_path / "gw.db", shared=True, account_changes=changes.for_process(0))
    second = SQLiteStore(tmp_path / "gw.db", shared=True, account_changes=changes.for_process(1))
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_shared_stores_see_each_others_account_changes(
        pair: tuple[SQLiteStore, SQLiteStore]) -> None:
    """A deactivation in one process binds the others at once, though they cache accounts."""
    first, second = pair
    await first.apply([Insert(account("a1"))])
    assert await second.get_account("a1") == account("a1")
    moved = replace(account("a1"), status="deactivated")
    assert await first.apply([Update(moved, expect="valid")])
    assert await second.get_account("a1") == moved
    assert await first.get_account("a1") == moved


def _change_behind_the_stores_back(path: Path, status: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE accounts SET status = ? WHERE id = 'a1'", (status,))


async def test_shared_account_cache_holds_until_any_process_counts_a_change(
        tmp_path: Path) -> None:
    changes = ChangeCounter(2)
    store = SQLiteStore(tmp_path / "gw.db", shared=True, account_changes=changes.for_process(0))
    await store.open()
    try:
        await store.apply([Insert(account("a1"))])
        assert (await store.get_account("a1")).status == "valid"  # type: ignore[union-attr]
        _change_behind_the_stores_back(tmp_path / "gw.db", "revoked")
        # Cached: no process counted an account change.
        assert (await store.get_account("a1")).status == "valid"  # type: ignore[union-attr]
        changes.for_process(1).add()  # what another worker's account write does
        assert (await store.get_account("a1")).status == "revoked"  # type: ignore[union-attr]
    finally:
        await store.close()


async def test_shared_store_without_a_change_count_caches_no_account(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "gw.db", shared=True)
    await store.open()
    try:
        await store.apply([Insert(account("a1"))])
        assert (await store.get_account("a1")).status == "valid"  # type: ignore[union-attr]
        _change_behind_the_stores_back(tmp_path / "gw.db", "revoked")
        assert (await store.get_account("a1")).status == "revoked"  # type: ignore[union-attr]
    finally:
        await store.close()


def test_change_counter_sums_every_process_slot() -> None:
    changes = ChangeCounter(3)
    views = [changes.for_process(i) for i in range(3)]
    views[0].add()
    views[2].add()
    views[2].add()
    assert [v.value() for v in views] == [3, 3, 3]
    with pytest.raises(ValueError):
        changes.for_process(3)


async def test_shared_writers_take_turns(pair: tuple[SQLiteStore, SQLiteStore]) -> None:
    """Two stores writing one file at once: every unit commits, none waits on SQLite's sleeps."""
    writes = [pair[i % 2].apply([Insert(account(f"a{i}"))]) for i in range(200)]
    assert all(await asyncio.wait_for(asyncio.gather(*writes), 20))
    for i in range(200):
        assert await pair[0].get_account(f"a{i}") is not None


async def test_a_group_waiting_for_another_writer_runs_on_the_loop_with_later_units(
        pair: tuple[SQLiteStore, SQLiteStore], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """While another process has the write turn, units queue up; once it is given back
    they commit in one transaction, run on the loop (not statement by statement in the
    writer thread, where each one is a GIL hand-over)."""
    first, _ = pair

    def in_the_thread(_batch: object) -> None:
        raise AssertionError("the group ran in the writer thread")

    monkeypatch.setattr(first, "_commit_batch", in_the_thread)
    begun: list[str] = []
    assert first._writer is not None
    first._writer.set_trace_callback(
        lambda sql: begun.append(sql) if sql.startswith("BEGIN") else None)
    turn = os.open(tmp_path / "gw.db.writers", os.O_RDWR)
    try:
        fcntl.flock(turn, fcntl.LOCK_EX)  # another worker is writing
        one = asyncio.create_task(first.apply([Insert(account("a1"))]))
        await asyncio.sleep(0.05)
        two = asyncio.create_task(first.apply([Insert(account("a2"))]))
        await asyncio.sleep(0.05)
        assert not one.done() and not two.done() and begun == []
        fcntl.flock(turn, fcntl.LOCK_UN)
        assert list(await asyncio.wait_for(asyncio.gather(one, two), 5)) == [True, True]
    finally:
        os.close(turn)
    assert begun == ["BEGIN IMMEDIATE"]
    assert await first.get_account("a2") is not None


async def test_a_wait_for_the_write_turn_cancelled_gives_the_turn_back(
        pair: tuple[SQLiteStore, SQLiteStore], tmp_path: Path) -> None:
    """The writer thread still waits when the wait is cancelled: once it has the turn,
    it must let go of it, or every other worker would wait for ever."""
    first, _ = pair
    turn = os.open(tmp_path / "gw.db.writers", os.O_RDWR)
    try:
        fcntl.flock(turn, fcntl.LOCK_EX)
        waiting = asyncio.create_task(first._wait_for_turn())
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        fcntl.flock(turn, fcntl.LOCK_UN)
        for _ in range(100):  # the thread takes the turn, then gives it back
            await asyncio.sleep(0.01)
            try:
                fcntl.flock(turn, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                continue
        else:
            raise AssertionError("the cancelled wait kept the write turn")
        fcntl.flock(turn, fcntl.LOCK_UN)
    finally:
        os.close(turn)
    assert await first.apply([Insert(account("a1"))])


def test_change_counter_is_shared_with_forked_processes() -> None:
    changes = ChangeCounter(2)
    pid = os.fork()
    if pid == 0:  # the child: count one change and leave at once
        changes.for_process(1).add()
        os._exit(0)
    os.waitpid(pid, 0)
    assert changes.for_process(0).value() == 1


async def test_the_scans_read_through_partial_indexes(store: SQLiteStore) -> None:
    """The scans for processing challenges and held orders read only the rows they want."""
    with sqlite3.connect(store.path) as db:
        plans = [" ".join(str(row[-1]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}"))
                 for sql in ("SELECT authz_id FROM challenges WHERE status = 'processing'",
                             "SELECT id FROM orders WHERE approval = 'pending' AND "
                             "status = 'processing' ORDER BY created_at")]
    assert "challenges_processing" in plans[0] and "orders_pending_approval" in plans[1], plans


def database_of_version(path: Path, migrations: int) -> sqlite3.Connection:
    """A database as the gateway left it after its first ``migrations`` migrations."""
    from gateway.storage.schema import MIGRATIONS

    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, sql in MIGRATIONS[:migrations]:
        db.executescript(sql.replace("BYTEA", "BLOB"))
        db.execute("INSERT INTO schema_version VALUES (?)", (version,))
    db.commit()
    return db


def index_names(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}


async def test_a_version_2_database_is_migrated(tmp_path: Path) -> None:
    from gateway.storage.schema import MIGRATIONS

    path = tmp_path / "old.db"
    with database_of_version(path, 2) as db:  # as the gateway left it before migration 3
        db.execute("INSERT INTO orders (id, account_id, status, identifiers, authz_ids, "
                   "expires, profile, created_at, approval) VALUES ('o9', 'a1', 'processing',"
                   " '[]', '[]', 0, 'default', 0, 'pending')")
    s = SQLiteStore(path)
    await s.open()
    try:
        assert [o.id for o in await s.orders_awaiting_approval(10)] == ["o9"]
    finally:
        await s.close()
    names = index_names(path)
    with sqlite3.connect(path) as db:
        assert {"challenges_processing", "orders_pending_approval"} <= names
        assert not {"challenges_status", "orders_approval"} & names
        assert max(v for (v,) in db.execute("SELECT version FROM schema_version")) \
            == MIGRATIONS[-1][0]


async def test_an_account_changed_by_another_process_is_seen_within_the_cache_time(
        store: SQLiteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.storage import sqlite

    clock = [1000.0]
    monkeypatch.setattr(sqlite, "_monotonic", lambda: clock[0])
    await store.apply([Insert(account("x1"))])
    assert (await store.get_account("x1")).status == "valid"  # type: ignore[union-attr]
    operator = SQLiteStore(tmp_path / "gw.db")  # as `acme-gateway accounts deactivate` opens it
    await operator.open()
    try:
        current = await operator.get_account("x1")
        assert current is not None
        await operator.apply([Update(current.moved("deactivated"), expect="valid")])
    finally:
        await operator.close()
    clock[0] += sqlite._ACCOUNT_CACHE_SECONDS - 0.1
    assert (await store.get_account("x1")).status == "valid"  # type: ignore[union-attr]
    clock[0] += 0.2
    assert (await store.get_account("x1")).status == "deactivated"  # type: ignore[union-attr]


def test_the_identity_adapters_bind_null_and_blobs_unchanged() -> None:
    bind_plainly()
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a, b)")
    conn.execute("INSERT INTO t VALUES (?, ?)", (None, b"\x00\x01"))
    assert conn.execute("SELECT typeof(a), typeof(b), b FROM t").fetchone() == \
        ("null", "blob", b"\x00\x01")
    conn.close()


async def test_validation_times_read_back_exactly_from_the_packed_authorization(
        store: SQLiteStore) -> None:
    # The packed read carries `validated` as integer microseconds (SQLite's text form
    # of a REAL keeps 15 digits): every microsecond of a second must come back as written.
    base = authz("z1", "o1")
    challs = tuple(
        replace(base.challenges[0], id=f"c{i}", status="valid",
                validated=NOW + timedelta(days=3000 + i, microseconds=us))
        for i, us in enumerate(range(0, 1_000_000, 9_973)))
    z1 = replace(base, challenges=challs)
    await store.apply([Insert(order("o1")), Insert(z1)])
    assert await store.get_authz("z1") == z1
