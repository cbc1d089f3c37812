"""The Store contract, run against every backend: SQLite and PostgreSQL.

What the issuance core relies on, whatever the engine: all-or-nothing units,
compare-and-set updates, unique keys as :class:`Conflict`, cursors, job
claims that only one holder wins, an audit chain that verifies, and state that
outlives the store object. Engine-specific behaviour (SQLite's grouped commits
and lock file, PostgreSQL's migrations) is tested beside each engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway import audit_report
from gateway.model.buckets import Bucket
from gateway.model.records import (
    PROCESSING,
    READY,
    AuditEvent,
    Authorization,
    Certificate,
    EabKey,
    Job,
)
from gateway.model.store import Conflict, Delete, Insert, Spend, Store, Update
from gateway.storage.sqlite import SQLiteStore
from tests.storage.models import NOW, account, authz, order

MakeStore = Callable[[], Awaitable[Store]]

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.external("postgres"))]


@pytest.fixture(params=BACKENDS)
async def make_store(request: pytest.FixtureRequest,
                     tmp_path: Path) -> AsyncIterator[MakeStore]:
    """Opens stores on one database of the backend under test (several: as several nodes)."""
    opened: list[Store] = []
    if request.param == "postgres":
        from gateway.storage.postgres import PostgresStore

        url = await request.getfixturevalue("postgres_server").new_database()

        def build() -> Store:
            return PostgresStore(url)
    else:
        def build() -> Store:
            return SQLiteStore(tmp_path / "gw.db", shared=True)

    async def make() -> Store:
        store = build()
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def store(make_store: MakeStore) -> Store:
    return await make_store()


async def test_a_ping_answers_on_an_open_store(store: Store) -> None:
    assert await store.ping() is None


async def test_round_trip_of_every_model(store: Store) -> None:
    await store.apply([Insert(account("a1")), Insert(order("o1")), Insert(authz("z-o1", "o1"))])
    assert await store.get_account("a1") == account("a1")
    assert await store.get_account_by_thumbprint("tp-a1") == account("a1")
    assert await store.get_order("o1") == order("o1")
    assert await store.get_authz("z-o1") == authz("z-o1", "o1")
    assert await store.get_authzs(["missing", "z-o1"]) == [authz("z-o1", "o1")]
    assert await store.get_authz_by_challenge("c-z-o1") == authz("z-o1", "o1")
    assert await store.list_order_ids("a1", "", 10) == ["o1"]
    key = EabKey(id="kid-1", hmac_key="c2VjcmV0", profiles=("default",), created_at=NOW)
    await store.apply([Insert(key)])
    assert await store.get_eab_key("kid-1") == key
    assert await store.list_eab_keys() == [key]


def _three_challenges(authz_id: str) -> Authorization:
    base = authz(authz_id, "o1")
    first = base.challenges[0]
    return replace(base, challenges=(
        first, replace(first, id=f"d-{authz_id}", type="dns-01", token="t2"),
        replace(first, id=f"a-{authz_id}", type="tls-alpn-01", token="t3",
                status=PROCESSING)))


async def test_authorizations_keep_their_challenges_in_order(store: Store) -> None:
    z1, z2 = _three_challenges("z1"), _three_challenges("z2")
    lone = replace(authz("z3", "o1"), challenges=())
    await store.apply([Insert(order("o1")), Insert(z2), Insert(lone), Insert(z1)])
    assert await store.get_authz("z1") == z1
    assert await store.get_authz("z3") == lone
    assert await store.get_authzs(["z1", "z3", "z2"]) == [z1, lone, z2]
    assert await store.get_authz_by_challenge("a-z2") == z2
    assert await store.processing_challenges() in ([z2, z1], [z1, z2])
    moved = z1.with_challenge(z1.challenges[1].moved(PROCESSING)).moved("valid")
    assert await store.apply([Update(moved.challenges[1], expect="pending"),
                              Update(moved, expect="pending")])
    assert await store.get_authz_by_challenge("d-z1") == moved


async def test_a_challenge_read_brings_its_authorization_and_order(store: Store) -> None:
    base = _three_challenges("z1")
    first, second, third = base.challenges
    # Odd microseconds and nested JSON must come back exactly, whatever the read packs.
    done = first.moved(PROCESSING).moved(
        "valid", validated=NOW + timedelta(seconds=1, microseconds=987_653),
        records=({"attempt": 1, "url": "http://example.com/", "port": 80},))
    failed = third.moved("invalid", error={"kind": "connection", "detail": "refused \u00e9"},
                         records=({"attempt": 2},))
    z1 = replace(base, challenges=(done, second, failed))
    orphan = _three_challenges("z9")  # its order was never stored
    await store.apply([Insert(order("o1")), Insert(z1), Insert(replace(orphan, order_id="o9"))])
    assert await store.get_authz_and_order_by_challenge("d-z1") == (z1, order("o1"))
    assert await store.get_authz_and_order_by_challenge("a-z1") == (z1, order("o1"))
    assert await store.get_authz_and_order_by_challenge("d-z9") == (
        replace(orphan, order_id="o9"), None)
    assert await store.get_authz_and_order_by_challenge("missing") is None
    assert await store.get_authz("z1") == z1


async def test_certificates_by_id_serial_and_key(store: Store) -> None:
    held = replace(order("o1"), csr_der=b"csr-1")
    cert = Certificate(id="cert-1", order_id="o1", account_id="a1", serial="1f",
                       leaf_der=b"\x30\x00", chain_pem="PEM", not_before=NOW,
                       not_after=NOW + timedelta(days=90), spki_sha256="k1", ca="local")
    await store.apply([Insert(held), Insert(cert)])
    assert await store.get_certificate("cert-1") == cert
    assert await store.get_certificate_by_serial("1f") == cert
    assert await store.certified_csrs("k1", 10) == [b"csr-1"]
    assert await store.certified_csrs("k2", 10) == []
    revoked = replace(cert, revoked_at=NOW, revocation_reason=1)
    assert await store.apply([Update(revoked)])
    assert await store.get_certificate("cert-1") == revoked
    with pytest.raises(Conflict):  # one serial per CA
        await store.apply([Insert(replace(cert, id="cert-2"))])


async def test_missing_rows_read_as_none(store: Store) -> None:
    for found in (await store.get_account("x"), await store.get_order("x"),
                  await store.get_authz("x"), await store.get_certificate("x"),
                  await store.get_certificate_by_serial("x"), await store.get_job("x"),
                  await store.get_eab_key("x")):
        assert found is None


async def test_compare_and_set_rolls_back_the_whole_unit(store: Store) -> None:
    await store.apply([Insert(account("a1")), Insert(order("o1"))])
    ready = order("o1").moved(READY)
    assert await store.apply([Update(ready, expect="pending")]) is True
    stale = replace(ready, profile="changed")
    job = Job(id="j1", order_id="o1", run_at=NOW)
    assert await store.apply([Insert(job), Update(stale, expect="pending")]) is False
    assert await store.get_job("o1") is None  # the insert of the failed unit was undone
    assert (await store.get_order("o1")).profile == "default"  # type: ignore[union-attr]


async def test_racing_units_one_wins_and_the_audit_chain_stays_whole(store: Store) -> None:
    await store.apply([Insert(account("a1")), Insert(order("o1"))])
    event = AuditEvent(event="test", at=NOW)
    ready = order("o1").moved(READY)
    results = await asyncio.gather(
        store.apply([Insert(replace(event, detail="one")), Update(ready, expect="pending")]),
        store.apply([Insert(replace(event, detail="two")),
                     Insert(Job(id="j1", order_id="o1", run_at=NOW)),
                     Update(replace(ready, profile="other"), expect="pending")]),
        store.apply([Insert(replace(event, detail="three")), Insert(order("o2"))]),
        store.apply([Insert(replace(event, detail="four")), Insert(account("a1"))]),
        return_exceptions=True)
    assert sorted(results[:2]) == [False, True]  # type: ignore[type-var]
    assert results[2] is True and isinstance(results[3], Conflict)
    won = "one" if results[0] is True else "two"
    assert (await store.get_job("o1") is not None) == (won == "two")
    details = [r["detail"] for r in await store.audit_rows(0, 10)]
    assert sorted(details) == sorted([won, "three"])
    check = await audit_report.verify(store)
    assert check.problems == [] and check.rows == 2


async def test_duplicate_key_is_a_conflict_and_others_commit(store: Store) -> None:
    await store.apply([Insert(account("a1"))])
    dup = replace(account("a2"), thumbprint="tp-a1")
    results = await asyncio.gather(store.apply([Insert(dup)]), store.apply([Insert(account("a3"))]),
                                   return_exceptions=True)
    assert isinstance(results[0], Conflict)
    assert results[1] is True
    assert await store.get_account("a3") is not None
    assert await store.get_account("a2") is None


async def test_many_concurrent_units_all_commit(store: Store) -> None:
    await store.apply([Insert(account("a1"))])
    results = await asyncio.gather(*(store.apply([Insert(order(f"o{i}"))]) for i in range(200)))
    assert all(results)
    assert len(await store.list_order_ids("a1", "", 500)) == 200


async def test_orders_page_with_cursor(store: Store) -> None:
    await store.apply([Insert(account("a1")), *(Insert(order(f"o{i}")) for i in range(5))])
    first = await store.list_order_ids("a1", "", 2)
    rest = await store.list_order_ids("a1", first[-1], 10)
    assert first + rest == [f"o{i}" for i in range(5)]
    assert await store.list_order_ids("a2", "", 10) == []


async def test_jobs_due_and_deleted(store: Store) -> None:
    await store.apply([Insert(Job(id="j1", order_id="o1", run_at=NOW)),
                       Insert(Job(id="j2", order_id="o2", run_at=NOW + timedelta(hours=1)))])
    assert [j.id for j in await store.due_jobs(NOW, 10)] == ["j1"]
    await store.apply([Delete(Job(id="j1", order_id="o1"))])
    assert await store.due_jobs(NOW + timedelta(hours=2), 10) == [
        Job(id="j2", order_id="o2", run_at=NOW + timedelta(hours=1))]


async def test_state_outlives_the_store_object(make_store: MakeStore) -> None:
    first = await make_store()
    await first.apply([Insert(account("a1")), Insert(order("o1"))])
    await first.close()
    second = await make_store()
    assert await second.get_order("o1") == order("o1")


async def test_account_reads_follow_every_write(store: Store) -> None:
    await store.apply([Insert(account("a1"))])
    assert await store.get_account("a1") == account("a1")
    moved = replace(account("a1"), status="deactivated")
    assert await store.apply([Update(moved, expect="valid")])
    assert await store.get_account("a1") == moved


async def test_a_write_in_one_store_is_read_in_another(make_store: MakeStore) -> None:
    """Two stores on one database, as two processes or nodes hold it."""
    first, second = await make_store(), await make_store()
    await first.apply([Insert(account("a1"))])
    assert await second.get_account("a1") == account("a1")
    moved = replace(account("a1"), status="deactivated")
    assert await second.apply([Update(moved, expect="valid")])
    assert await first.get_account("a1") == moved


async def test_a_job_is_claimed_by_one_holder_only(make_store: MakeStore) -> None:
    first, second = await make_store(), await make_store()
    job = Job(id="j1", order_id="o1", run_at=NOW)
    await first.apply([Insert(job)])
    until = NOW + timedelta(minutes=5)
    results = await asyncio.gather(first.claim_job(job, until), second.claim_job(job, until))
    assert sorted(results) == [False, True]
    assert await first.due_jobs(NOW + timedelta(minutes=1), 10) == []  # leased: not due
    assert [j.id for j in await second.due_jobs(until, 10)] == ["j1"]  # the lease ran out
    claimed = replace(job, run_at=until)
    assert await second.claim_job(claimed, NOW)  # handed back by its holder
    assert [j.id for j in await first.due_jobs(NOW, 10)] == ["j1"]
    await first.apply([Delete(job)])
    assert await second.claim_job(replace(job, run_at=NOW), until) is False  # finished


async def test_many_claimers_one_winner_per_job(make_store: MakeStore) -> None:
    stores = [await make_store() for _ in range(4)]
    jobs = [Job(id=f"j{i}", order_id=f"o{i}", run_at=NOW) for i in range(20)]
    await stores[0].apply([Insert(j) for j in jobs])
    until = NOW + timedelta(minutes=5)
    claims = [s.claim_job(j, until) for j in jobs for s in stores]
    results = await asyncio.gather(*claims)
    wins = [sum(results[i * len(stores):(i + 1) * len(stores)]) for i in range(len(jobs))]
    assert wins == [1] * len(jobs)


async def test_scans_for_processing_challenges_and_held_orders(store: Store) -> None:
    z1, z2 = authz("z-o1", "o1"), authz("z-o2", "o2")
    busy = replace(z2, challenges=(replace(z2.challenges[0], status=PROCESSING),))
    held = replace(order("o2"), status=PROCESSING, approval="pending")
    await store.apply([Insert(order("o1")), Insert(held), Insert(z1), Insert(busy)])
    assert [a.id for a in await store.processing_challenges()] == ["z-o2"]
    assert [o.id for o in await store.orders_awaiting_approval(10)] == ["o2"]


async def test_audit_rows_within_a_time_window(store: Store) -> None:
    events = [AuditEvent(event="e", at=NOW + timedelta(minutes=i), detail=str(i))
              for i in range(4)]
    for e in events:
        await store.apply([Insert(e)])
    window: Any = await store.audit_rows(0, 10, since=NOW + timedelta(minutes=1),
                                         until=NOW + timedelta(minutes=3))
    assert [r["detail"] for r in window] == ["1", "2"]
    assert [r["seq"] for r in await store.audit_rows(2, 10)] == [3, 4]
    with pytest.raises(TypeError):
        await store.apply([Update(events[0])])  # append-only


# -- rate-limit buckets ------------------------------------------------------------

THREE_PER_MINUTE = Bucket(3, 60.0)  # a token every 20 s


def spend(at: datetime, key: str = "k", overdraw: bool = False) -> Spend:
    return Spend(key, THREE_PER_MINUTE, 1, at, overdraw)


async def test_a_spend_past_the_capacity_fails_its_unit(store: Store) -> None:
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


async def test_an_overdraw_counts_past_the_capacity(store: Store) -> None:
    """What already happened is counted even past the limit; plain spends then wait longer."""
    for _ in range(4):
        assert await store.apply([spend(NOW, overdraw=True)])
    assert (await store.buckets_full_at(["k"]))["k"] == NOW + timedelta(seconds=80)
    assert not await store.apply([spend(NOW + timedelta(seconds=39))])
    assert await store.apply([spend(NOW + timedelta(seconds=40))])


async def test_a_spend_larger_than_the_bucket_is_refused_outright(store: Store) -> None:
    with pytest.raises(ValueError, match="can never hold"):
        await store.apply([Spend("k", THREE_PER_MINUTE, 4, NOW)])


async def test_two_stores_on_one_database_share_a_bucket(make_store: MakeStore) -> None:
    """Processes (nodes) on one database draw on one bucket: of six racing spends, three pass."""
    first, second = await make_store(), await make_store()
    results = await asyncio.gather(*(s.apply([spend(NOW)]) for s in (first, second) * 3))
    assert sorted(results) == [False] * 3 + [True] * 3
    assert (await second.buckets_full_at(["k"]))["k"] == NOW + timedelta(seconds=60)


async def test_full_buckets_are_forgotten(store: Store) -> None:
    await store.apply([spend(NOW, "early"), spend(NOW + timedelta(seconds=30), "late")])
    await store.forget_full_buckets(NOW + timedelta(seconds=21))
    assert set(await store.buckets_full_at(["early", "late"])) == {"late"}


async def test_scep_passwords_and_transactions(store: Store) -> None:
    from gateway.model.records import ScepOtp, ScepTransaction

    otp = ScepOtp(id="h1", label="phones", names=("a.example",), expires=NOW, created_at=NOW)
    tx = ScepTransaction(id="phones/T1", order_id="o1", requester="scep:otp:h1",
                         signer_key_sha256="k", csr_sha256="c", created_at=NOW)
    assert await store.apply([Insert(otp), Insert(tx)])
    assert await store.get_scep_otp("h1") == otp
    assert await store.get_scep_transaction("phones/T1") == tx
    assert await store.get_scep_otp("h2") is None
    used = replace(otp, status="used", used_by="phones/T1")
    assert await store.apply([Update(used, expect="active")])
    assert not await store.apply([Update(used, expect="active")])  # spent once only
    assert await store.get_scep_otp("h1") == used
    with pytest.raises(Conflict):
        await store.apply([Insert(tx)])
