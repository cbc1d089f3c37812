"""Retention SQL on the SQLite store: kinds, statistics, migration 10, pages handed back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.model.records import INVALID, Identifier, Order
from gateway.model.store import Insert, Store
from gateway.storage import retention
from gateway.storage.sqlite import SQLiteStore
from tests.storage.test_contract import MakeStore, make_store  # noqa: F401  (the fixture)
from tests.storage.test_sqlite import database_of_version, index_names

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(days=1)


def finished(i: int, csr_bytes: int = 0) -> Order:
    return Order(id=f"o{i}", account_id="a1", status=INVALID,
                 identifiers=(Identifier("dns", "example.com"),), authz_ids=(), expires=T0,
                 profile="default", created_at=T0, csr_der=b"x" * csr_bytes or None)


@pytest.fixture
def store(sqlite_store: SQLiteStore) -> SQLiteStore:
    return sqlite_store


@pytest.fixture
async def any_store(make_store: MakeStore) -> Store:  # noqa: F811  (the imported fixture)
    """Every backend of the Store contract: what pruning promises does not depend on one."""
    return await make_store()


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: jobs, certificates"):
        retention.delete_statements("audit_events")


async def test_a_prune_counts_what_it_removed_and_a_dry_run_what_it_would(
        any_store: Store) -> None:
    store = any_store
    await store.apply([Insert(finished(i)) for i in range(3)])
    assert await store.prune("orders", LATER, 10, dry_run=True) == 3
    assert await store.prune("orders", T0, 10) == 0  # expiry not before the cut
    assert await store.prune("orders", LATER, 2) == 2
    assert await store.prune("orders", LATER, 10) == 1


async def test_statistics_count_rows_and_bytes_of_every_table(any_store: Store) -> None:
    store = any_store
    await store.apply([Insert(finished(i)) for i in range(4)])
    stats = await store.table_stats()
    assert set(stats.tables) == set(retention.TABLES)
    assert stats.tables["orders"].rows == 4 and stats.tables["accounts"].rows == 0
    assert stats.tables["orders"].bytes > 0
    assert stats.size_bytes >= sum(t.bytes for t in stats.tables.values())


async def test_a_new_file_hands_pages_back_after_a_prune(store: SQLiteStore) -> None:
    await store.apply([Insert(finished(i, csr_bytes=4000)) for i in range(200)])
    grown = (await store.table_stats()).size_bytes
    while await store.prune("orders", LATER, 500):
        pass
    stats = await store.table_stats()
    assert stats.tables["orders"].rows == 0
    assert stats.size_bytes < grown / 4


async def test_a_version_4_database_gets_the_retention_indexes(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    database_of_version(path, 4).close()  # as the gateway left it before migration 10
    s = SQLiteStore(path)
    await s.open()
    try:
        await s.apply([Insert(finished(1))])
        assert await s.prune("orders", LATER, 10) == 1  # free pages stay for reuse here
    finally:
        await s.close()
    assert {"orders_expires", "authorizations_expires", "certificates_not_after",
            "certificates_order"} <= index_names(path)
