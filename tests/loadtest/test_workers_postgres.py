"""``acme-gateway serve --workers 2`` on PostgreSQL: the load generator against both workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.loadtest.test_gateway import RunningGateway
from tests.loadtest.test_workers import _load, two_workers
from tests.pgserver import PostgresServer

pytestmark = pytest.mark.external("postgres")


@pytest.fixture
async def workers(tmp_path: Path, postgres_server: PostgresServer
                  ) -> AsyncIterator[tuple[RunningGateway, str]]:
    url = await postgres_server.new_database()
    async with two_workers(tmp_path, f'\n[storage]\nurl = "{url}"\n') as running:
        yield running, url


async def test_two_workers_on_postgres_issue_each_order_once(
        workers: tuple[RunningGateway, str]) -> None:
    gateway, url = workers
    result = await _load(gateway, 30)
    assert result["certificates_issued"] == 30 and not result["errors"]
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM certificates") == 30
        assert await conn.fetchval("SELECT count(*) FROM jobs") == 0
        # The local CA's ledger is in the same database: one CA call per order.
        assert await conn.fetchval("SELECT count(*) FROM localca_issued") == 30
        assert await conn.fetchval("SELECT count(*) FROM spent_nonces") > 30 * 5
    finally:
        await conn.close()
    assert not (gateway.tmp_path / "data" / "gateway.db").exists()
