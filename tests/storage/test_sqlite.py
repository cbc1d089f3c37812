"""The SQLite store: all-or-nothing units, compare-and-set, grouped commits, restarts."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway import audit_report
from gateway.core.models import (
    PENDING,
    PROCESSING,
    READY,
    Account,
    AuditEvent,
    Authorization,
    Challenge,
    Identifier,
    Job,
    Order,
)
from gateway.core.ratelimits.bucket import Bucket
from gateway.core.role import ChangeCounter
from gateway.storage.base import Conflict, Delete, Insert, Spend, Update
from gateway.storage.sqlite import SQLiteStore

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def account(i: str) -> Account:
    return Account(id=i, thumbprint=f"tp-{i}", jwk={"kty": "EC"}, created_at=NOW)


def order(i: str, account_id: str = "a1") -> Order:
    return Order(id=i, account_id=account_id, status=PENDING,
                 identifiers=(Identifier("dns", "example.com"),), authz_ids=(f"z-{i}",),
                 expires=NOW + timedelta(days=7), profile="default", created_at=NOW)


def authz(i: str, order_id: str) -> Authorization:
    return Authorization(id=i, account_id="a1", order_id=order_id,
                         identifier=Identifier("dns", "example.com"), status=PENDING,
                         expires=NOW + timedelta(days=30),
                         challenges=(Challenge(id=f"c-{i}", authz_id=i, type="http-01",
                                               token="t"),))


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = SQLiteStore(tmp_path / "gw.db")
    await s.open()
    yield s
    await s.close()


async def test_round_trip_of_every_model(store: SQLiteStore) -> None:
    await store.apply([Insert(account("a1")), Insert(order("o1")), Insert(authz("z-o1", "o1"))])
    assert await store.get_account("a1") == account("a1")
    assert await store.get_account_by_thumbprint("tp-a1") == account("a1")
    assert await store.get_order("o1") == order("o1")
    assert await store.get_authz("z-o1") == authz("z-o1", "o1")
    assert await store.get_authz_by_challenge("c-z-o1") == authz("z-o1", "o1")
    assert await store.list_order_ids("a1", "", 10) == ["o1"]


async def test_compare_and_set_rolls_back_the_whole_unit(store: SQLiteStore) -> None:
    await store.apply([Insert(account("a1")), Insert(order("o1"))])
    ready = order("o1").moved(READY)
    assert await store.apply([Update(ready, expect=PENDING)]) is True
    stale = replace(ready, profile="changed")
    job = Job(id="j1", order_id="o1", run_at=NOW)
    assert await store.apply([Insert(job), Update(stale, expect=PENDING)]) is False
    assert await store.get_job("o1") is None  # the insert of the failed unit was undone
    assert (await store.get_order("o1")).profile == "default"  # type: ignore[union-attr]


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


async def test_duplicate_key_is_a_conflict_and_others_commit(store: SQLiteStore) -> None:
    await store.apply([Insert(account("a1"))])
    dup = replace(account("a2"), thumbprint="tp-a1")
    results = await asyncio.gather(store.apply([Insert(dup)]), store.apply([Insert(account("a3"))]),
                                   return_exceptions=True)
    assert isinstance(results[0], Conflict)
    assert results[1] is True
    assert await store.get_account("a3") is not None
    assert await store.get_account("a2") is None


async def test_many_concurrent_units_all_commit(store: SQLiteStore) -> None:
    await store.apply([Insert(account("a1"))])
    results = await asyncio.gather(*(store.apply([Insert(order(f"o{i}"))]) for i in range(200)))
    assert all(results)
    assert len(await store.list_order_ids("a1", "", 500)) == 200


async def test_orders_page_with_cursor(store: SQLiteStore) -> None:
    await store.apply([Insert(account("a1")), *(Insert(order(f"o{i}")) for i in range(5))])
    first = await store.list_order_ids("a1", "", 2)
    rest = await store.list_order_ids("a1", first[-1], 10)
    assert first + rest == [f"o{i}" for i in range(5)]


async def test_jobs_due_and_deleted(store: SQLiteStore) -> None:
    await store.apply([Insert(Job(id="j1", order_id="o1", run_at=NOW)),
                       Insert(Job(id="j2", order_id="o2", run_at=NOW + timedelta(hours=1)))])
    assert [j.id for j in await store.due_jobs(NOW, 10)] == ["j1"]
    await store.apply([Delete(Job(id="j1", order_id="o1"))])
    assert await store.due_jobs(NOW + timedelta(hours=2), 10) == [
        Job(id="j2", order_id="o2", run_at=NOW + timedelta(hours=1))]


async def test_state_survives_reopen(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path / "gw.db")
    await first.open()
    await first.apply([Insert(account("a1")), Insert(order("o1"))])
    await first.close()
    second = SQLiteStore(tmp_path / "gw.db")
    await second.open()
    assert await second.get_order("o1") == order("o1")
    await second.close()


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


async def test_a_job_is_claimed_by_one_process_only(
        pair: tuple[SQLiteStore, SQLiteStore]) -> None:
    """claim_job is a compare-and-set of run_at: of two stores on one file, one wins."""
    first, second = pair
    job = Job(id="j1", order_id="o1", run_at=NOW)
    await first.apply([Insert(job)])
    until = NOW + timedelta(minutes=5)
    results = await asyncio.gather(first.claim_job(job, until), second.claim_job(job, until))
    assert sorted(results) == [False, True]
    assert await first.due_jobs(NOW + timedelta(minutes=1), 10) == []  # claimed: not due
    claimed = replace(job, run_at=until)
    assert await second.claim_job(claimed, NOW)  # handed back by its holder
    assert [j.id for j in await first.due_jobs(NOW, 10)] == ["j1"]
    await first.apply([Delete(job)])
    assert await second.claim_job(replace(job, run_at=NOW), until) is False  # finished


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


def test_change_counter_is_shared_with_forked_processes() -> None:
    changes = ChangeCounter(2)
    pid = os.fork()
    if pid == 0:  # the child: count one change and leave at once
        changes.for_process(1).add()
        os._exit(0)
    os.waitpid(pid, 0)
    assert changes.for_process(0).value() == 1


async def test_scans_for_processing_challenges_and_held_orders(store: SQLiteStore) -> None:
    z1, z2 = authz("z-o1", "o1"), authz("z-o2", "o2")
    busy = replace(z2, challenges=(replace(z2.challenges[0], status=PROCESSING),))
    held = replace(order("o2"), status=PROCESSING, approval="pending")
    await store.apply([Insert(order("o1")), Insert(held), Insert(z1), Insert(busy)])
    assert [a.id for a in await store.processing_challenges()] == ["z-o2"]
    assert [o.id for o in await store.orders_awaiting_approval(10)] == ["o2"]
    # Both scans read only the rows they want, through partial indexes.
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


# -- rate-limit buckets ------------------------------------------------------------

THREE_PER_MINUTE = Bucket(3, 60.0)  # a token every 20 s


def spend(at: datetime, key: str = "k", overdraw: bool = False) -> Spend:
    return Spend(key, THREE_PER_MINUTE, 1, at, overdraw)


async def test_a_spend_past_the_capacity_fails_its_unit(store: SQLiteStore) -> None:
    """Three tokens, then the fourth unit fails whole: its order is not stored either."""
    for i in range(3):
        assert await store.apply([spend(NOW), Insert(order(f"o{i}"))])
    assert not await store.apply([spend(NOW), Insert(order("o3"))])
    assert await store.get_order("o3") is None
    full = await store.buckets_full_at(["k", "other"])
    assert full == {"k": NOW + timedelta(seconds=60)}
    assert THREE_PER_MINUTE.wait(full["k"].timestamp(), NOW.timestamp(), 1) == 20.0
    assert not await store.apply([spend(NOW + timedelta(seconds=19))])
    assert await store.apply([spend(NOW + timedelta(seconds=20))])  # one token refilled


async def test_an_overdraw_counts_past_the_capacity(store: SQLiteStore) -> None:
    """What already happened is counted even past the limit; plain spends then wait longer."""
    for _ in range(4):
        assert await store.apply([spend(NOW, overdraw=True)])
    assert (await store.buckets_full_at(["k"]))["k"] == NOW + timedelta(seconds=80)
    assert not await store.apply([spend(NOW + timedelta(seconds=39))])
    assert await store.apply([spend(NOW + timedelta(seconds=40))])


async def test_a_spend_larger_than_the_bucket_is_refused_outright(store: SQLiteStore) -> None:
    with pytest.raises(ValueError, match="can never hold"):
        await store.apply([Spend("k", THREE_PER_MINUTE, 4, NOW)])


async def test_two_stores_on_one_file_share_a_bucket(
        pair: tuple[SQLiteStore, SQLiteStore]) -> None:
    """Processes on one file draw on one bucket: of six racing spends, three pass."""
    first, second = pair
    results = await asyncio.gather(*(s.apply([spend(NOW)]) for s in (first, second) * 3))
    assert sorted(results) == [False] * 3 + [True] * 3
    assert (await second.buckets_full_at(["k"]))["k"] == NOW + timedelta(seconds=60)


async def test_full_buckets_are_forgotten(store: SQLiteStore) -> None:
    await store.apply([spend(NOW, "early"), spend(NOW + timedelta(seconds=30), "late")])
    await store.forget_full_buckets(NOW + timedelta(seconds=21))
    assert set(await store.buckets_full_at(["early", "late"])) == {"late"}
