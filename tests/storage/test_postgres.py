"""What only the PostgreSQL store does: migrations, the schema guard, nonces, reconnecting.

The behaviour every store shares is in test_contract.py.
"""

from __future__ import annotations

import asyncpg
import pytest

from gateway.errors import ConfigError
from gateway.model.store import Insert, StoreUnavailable
from gateway.storage import pg_schema
from gateway.storage.postgres import PostgresStore, redacted
from tests.pgserver import PostgresServer
from tests.storage.models import account

pytestmark = pytest.mark.external("postgres")


async def _versions(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        return [r[0] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY 1")]
    finally:
        await conn.close()


async def test_a_fresh_database_gets_every_migration_once(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    assert await store.migrate() == (0, pg_schema.LATEST)
    assert await store.migrate() == (pg_schema.LATEST, pg_schema.LATEST)
    await store.open()  # opening migrates again: nothing to do
    await store.close()
    assert await _versions(postgres_url) == [v for v, _ in pg_schema.MIGRATIONS]


async def test_a_newer_schema_is_refused(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.migrate()
    conn = await asyncpg.connect(postgres_url)
    await conn.execute("INSERT INTO schema_version VALUES ($1)", pg_schema.LATEST + 1)
    await conn.close()
    with pytest.raises(ConfigError, match=f"version {pg_schema.LATEST + 1}, newer"):
        await store.open()


async def test_an_unreachable_database_is_unavailable_not_an_error(
        postgres_server: PostgresServer) -> None:
    url = postgres_server.url("postgres").replace(f":{postgres_server.port}/", ":1/")
    with pytest.raises(StoreUnavailable):
        await PostgresStore(url).open()


async def test_nonces_are_spent_once_and_forgotten_after_expiry(postgres_url: str) -> None:
    first, second = PostgresStore(postgres_url), PostgresStore(postgres_url)
    await first.open()
    await second.open()
    try:
        assert await first.spend_nonce("n1", 100.0) is True
        assert await second.spend_nonce("n1", 100.0) is False
        await second.forget_spent_nonces(before=101.0)
        assert await first.spend_nonce("n1", 200.0) is True
        secret = await first.node_secret("nonces")
        assert len(secret) == 32 and await second.node_secret("nonces") == secret
    finally:
        await first.close()
        await second.close()


async def test_the_store_reconnects_after_the_server_restarts(
        postgres_server: PostgresServer, postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        await store.apply([Insert(account("a1"))])
        postgres_server.stop()
        with pytest.raises(StoreUnavailable):
            await store.get_account("a1")
        with pytest.raises(StoreUnavailable):  # what /readyz asks (gateway.core.readiness)
            await store.ping()
        postgres_server.start()
        await store.ping()
        assert await store.get_account("a1") == account("a1")
        assert await store.apply([Insert(account("a2"))])
    finally:
        await store.close()


def test_redacted_hides_only_the_password() -> None:
    assert redacted("postgresql://gw:s3cret@db:5432/gw") == "postgresql://gw:***@db:5432/gw"
    assert redacted("postgresql://gw@db/gw") == "postgresql://gw@db/gw"
