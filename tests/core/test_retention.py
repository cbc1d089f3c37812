"""The pruner on a real SQLite store and a fake clock: each kind goes exactly when its
window ends, and nothing still referenced goes at all."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.retention import Pruner
from gateway.core.retention_settings import RetentionSettings
from gateway.model.clock import FakeClock
from gateway.model.records import (
    INVALID,
    PENDING,
    PROCESSING,
    VALID,
    AuditEvent,
    Authorization,
    Certificate,
    Challenge,
    Identifier,
    Job,
    Order,
)
from gateway.model.store import DatabaseStats, Insert, Model
from gateway.storage.sqlite import SQLiteStore

T0 = datetime(2030, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
WINDOWS = {"jobs": 7 * DAY, "certificates": 365 * DAY, "orders": 30 * DAY,
           "authorizations": 30 * DAY, "valid_authorizations": DAY}
DNS = (Identifier("dns", "example.com"),)


def order(i: str, status: str, authz_ids: tuple[str, ...] = ()) -> Order:
    return Order(id=i, account_id="a1", status=status, identifiers=DNS, authz_ids=authz_ids,
                 expires=T0, profile="default", created_at=T0 - DAY)


def authz(i: str, order_id: str, status: str) -> Authorization:
    return Authorization(id=i, account_id="a1", order_id=order_id, identifier=DNS[0],
                         status=status, expires=T0,
                         challenges=(Challenge(id=f"c-{i}", authz_id=i, type="http-01",
                                               token="t"),))


def certificate(i: str, order_id: str) -> Certificate:
    return Certificate(id=i, order_id=order_id, account_id="a1", serial=i, leaf_der=b"x",
                       chain_pem="", not_before=T0 - 90 * DAY, not_after=T0,
                       spki_sha256=i, ca="local")


def job(i: str, state: str) -> Job:
    return Job(id=i, order_id=f"o-{i}", state=state, run_at=T0)


@pytest.fixture
def store(sqlite_store: SQLiteStore) -> SQLiteStore:
    return sqlite_store


def pruner(store: SQLiteStore, clock: FakeClock, batch_size: int = 500) -> Pruner:
    return Pruner(RetentionSettings(batch_size=batch_size, windows=WINDOWS), store, clock)


async def present(store: SQLiteStore, model: Model) -> bool:
    if isinstance(model, Order):
        return await store.get_order(model.id) is not None
    if isinstance(model, Authorization):
        return await store.get_authz(model.id) is not None
    if isinstance(model, Certificate):
        return await store.get_certificate(model.id) is not None
    assert isinstance(model, Job)
    return await store.get_job(model.order_id) is not None


# Every record expires (or ends) at T0; it goes one second after T0 + its window.
KINDS = [
    ("invalid order", order("o1", INVALID), WINDOWS["orders"]),
    ("valid order without its certificate", order("o2", VALID), WINDOWS["orders"]),
    ("order left pending", order("o3", PENDING), WINDOWS["orders"]),
    ("invalid authorization", authz("z1", "gone", INVALID), WINDOWS["authorizations"]),
    ("valid authorization", authz("z2", "gone", VALID), WINDOWS["valid_authorizations"]),
    ("certificate", certificate("s1", "gone"), WINDOWS["certificates"]),
    ("finished job", job("j1", "done"), WINDOWS["jobs"]),
    ("failed job", job("j2", "failed"), WINDOWS["jobs"]),
]


@pytest.mark.parametrize(("what", "record", "window"), KINDS, ids=[k[0] for k in KINDS])
async def test_a_record_goes_exactly_when_its_window_ends(
        store: SQLiteStore, what: str, record: Model, window: timedelta) -> None:
    clock = FakeClock(T0 + window)
    await store.apply([Insert(record)])
    await pruner(store, clock).run_pass()
    assert await present(store, record), f"{what} removed at the end of its window"
    clock.advance(1)
    report = await pruner(store, clock).run_pass()
    assert not await present(store, record), f"{what} kept after its window"
    assert report.total == 1


async def test_challenges_go_with_their_authorization(store: SQLiteStore) -> None:
    first = authz("z1", "gone", INVALID)
    await store.apply([Insert(first), Insert(replace(authz("z2", "gone", PENDING),
                                                     expires=T0 + DAY))])
    assert await store.prune("authorizations", T0 + 2 * DAY, 1) == 1  # the oldest: z1
    stats = await store.table_stats()
    assert (stats.tables["authorizations"].rows, stats.tables["challenges"].rows) == (1, 1)
    assert await store.get_authz_by_challenge("c-z1") is None
    kept = await store.get_authz_by_challenge("c-z2")
    assert kept is not None and len(kept.challenges) == 1


LONG_AFTER = T0 + 10 * 365 * DAY  # every window of every kind has ended


async def test_a_pending_orders_authorization_is_kept(store: SQLiteStore) -> None:
    held = authz("z1", "o1", INVALID)
    await store.apply([Insert(replace(order("o1", PENDING, ("z1",)), expires=LONG_AFTER)),
                       Insert(held)])
    await pruner(store, FakeClock(LONG_AFTER - DAY)).run_pass()
    assert await present(store, held)


async def test_an_order_in_processing_and_its_job_in_flight_are_kept(store: SQLiteStore) -> None:
    busy, in_flight = order("o1", PROCESSING, ("z1",)), Job(id="j1", order_id="o1", run_at=T0)
    await store.apply([Insert(busy), Insert(authz("z1", "o1", VALID)), Insert(in_flight),
                       Insert(job("j2", "waiting"))])
    report = await pruner(store, FakeClock(LONG_AFTER)).run_pass()
    assert report.total == 0
    assert await present(store, busy) and await present(store, in_flight)


async def test_an_unexpired_certificate_keeps_its_order(store: SQLiteStore) -> None:
    done = order("o1", VALID)
    kept = replace(certificate("s1", "o1"), not_after=T0 + 400 * DAY)
    await store.apply([Insert(done), Insert(kept)])
    clock = FakeClock(T0 + 400 * DAY + WINDOWS["certificates"])
    await pruner(store, clock).run_pass()
    assert await present(store, kept) and await present(store, done)
    clock.advance(1)  # the certificate goes, and its order (long past its window) with it
    report = await pruner(store, clock).run_pass()
    assert report.removed["certificates"] == report.removed["orders"] == 1
    assert not await present(store, done)


async def test_the_audit_trail_is_never_pruned(store: SQLiteStore) -> None:
    await store.apply([Insert(AuditEvent("order_created", at=T0 - 900 * DAY)),
                       Insert(order("o1", INVALID))])
    await pruner(store, FakeClock(LONG_AFTER)).run_pass()
    assert len(await store.audit_rows(0, 10)) == 1


async def test_a_backlog_goes_in_batches_and_a_dry_run_removes_nothing(
        store: SQLiteStore) -> None:
    await store.apply([Insert(order(f"o{i}", INVALID)) for i in range(7)])
    clock = FakeClock(LONG_AFTER)
    dry = await pruner(store, clock, batch_size=3).run_pass(dry_run=True)
    assert dry.removed["orders"] == 7
    assert (await store.table_stats()).tables["orders"].rows == 7
    report = await pruner(store, clock, batch_size=3).run_pass()
    assert report.removed["orders"] == 7
    assert (await store.table_stats()).tables["orders"].rows == 0


async def test_a_capped_pass_leaves_the_rest_to_the_next(store: SQLiteStore) -> None:
    await store.apply([Insert(order(f"o{i}", INVALID)) for i in range(5)])
    capped = Pruner(RetentionSettings(batch_size=2, max_batches=1, windows=WINDOWS), store,
                    FakeClock(LONG_AFTER))
    assert [(await capped.run_pass()).removed["orders"] for _ in range(4)] == [2, 2, 1, 0]


async def first_tick(timed: Pruner) -> DatabaseStats:
    """Start the timer, wait for its first pass (it runs at once), stop it."""
    timed.start()
    try:
        for _ in range(500):
            if timed.stats is not None:
                break
            await asyncio.sleep(0.01)
    finally:
        await timed.stop()
    assert timed.stats is not None
    return timed.stats


@pytest.mark.parametrize(("enabled", "rows_left"), [(True, 0), (False, 1)])
async def test_the_timer_prunes_when_on_and_always_reads_statistics(
        store: SQLiteStore, enabled: bool, rows_left: int) -> None:
    await store.apply([Insert(order("o1", INVALID))])
    timed = Pruner(RetentionSettings(enabled=enabled, windows=WINDOWS), store,
                   FakeClock(LONG_AFTER))
    assert (await first_tick(timed)).tables["orders"].rows == rows_left


async def test_nodes_sharing_a_store_take_turns_one_pass_per_interval(
        store: SQLiteStore) -> None:
    clock = FakeClock(T0)
    one, other = pruner(store, clock), pruner(store, clock)
    assert await one.take_turn()
    assert not await other.take_turn()
    clock.advance(one.settings.interval_seconds / 2)
    assert not await one.take_turn() and not await other.take_turn()
    clock.advance(one.settings.interval_seconds / 2)
    assert await other.take_turn()
    assert not await one.take_turn()

