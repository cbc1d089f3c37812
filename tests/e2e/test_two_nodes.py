"""Two gateway processes on one PostgreSQL database; one is killed (SIGKILL) under load.

Clients alternate between the nodes on every request (a nonce from one node is
spent at the other). The local CA keeps its ledger in the same database, as
nodes on several hosts would. Midway, CA issuance is stalled (the test locks
the ledger's table) so that both nodes have CA jobs in flight, and node B is
killed with SIGKILL. Then:

- every order a client was told about ends valid (or cleanly invalid);
- the CA's ledger counts exactly one certificate per order;
- the jobs node B held are finished by node A once their lease runs out.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.alternating import AlternatingSession
from tests.e2e.acme_load import BASE, Load, Node, client_run
from tests.e2e.harness import ChallTestSrv, free_port
from tests.pgserver import PostgresServer

pytestmark = pytest.mark.external("postgres")
CLIENTS, ORDERS_EACH = 8, 5
# The lease outlasts the stall and the look at the jobs after it: what is leased then is B's.
CLAIM_SECONDS = 5
STALL = 3.0
# Jobs in flight before node B is killed: finalizes alternate between the nodes, so
# with this many both hold some.
STALLED_JOBS = 6


@asynccontextmanager
async def ledger_stalled(url: str) -> AsyncIterator[None]:
    """Lock the local CA's ledger table: issuances sign, then wait to be recorded."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE localca_issued IN EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


async def _until_leased(url: str, count: int, timeout: float) -> None:
    """Wait (at most ``timeout``) until ``count`` CA jobs are leased by the nodes."""
    for _ in range(int(timeout / 0.05)):  # the database is polled: no event to wait on
        if len(await leased_jobs(url)) >= count:
            return
        await asyncio.sleep(0.05)


async def leased_jobs(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        return {r[0] for r in await conn.fetch(
            "SELECT order_id FROM jobs WHERE state = 'queued' AND run_at > "
            "EXTRACT(EPOCH FROM clock_timestamp())")}
    finally:
        await conn.close()


async def test_a_node_killed_under_load_loses_nothing_and_issues_nothing_twice(
        tmp_path: Path, dns: ChallTestSrv, postgres_server: PostgresServer) -> None:
    url = await postgres_server.new_database()
    data = tmp_path / "data"
    doc = {
        "server": {"data_dir": str(data), "base_url": BASE, "access_log": False},
        "storage": {"url": url, "pool_size": 4},
        "acme": {"retry_after_seconds": 1, "finalize_wait_seconds": 0.5},
        "validation": {"resolvers": [f"127.0.0.1:{dns.dns_port}"], "allow_loopback": True,
                       "http01_port": free_port(), "attempt_timeout_seconds": 5},
        "jobs": {"claim_seconds": CLAIM_SECONDS, "scan_period_seconds": 0.2,
                 "retry_base_seconds": 0.2, "retry_cap_seconds": 0.5, "max_attempts": 100},
    }
    node_a, node_b = Node(tmp_path / "a", doc), Node(tmp_path / "b", doc)
    await node_a.start()  # first: creates the CA and the TLS certificate both nodes use
    await node_b.start()
    load = Load()
    try:
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=node_a.ssl_context())) as http:
            session = AlternatingSession(BASE, [(http, f"https://127.0.0.1:{node_a.port}"),
                                                (http, f"https://127.0.0.1:{node_b.port}")])
            clients = asyncio.gather(*(client_run(session, dns, i, load, ORDERS_EACH)
                                       for i in range(CLIENTS)))
            await load.wait_finalized(CLIENTS * ORDERS_EACH // 3)
            async with ledger_stalled(url):
                # Finalizes reach both nodes; their jobs sign and wait for the ledger.
                # Enough of them to be sure both nodes hold some, however slow the run.
                await _until_leased(url, STALLED_JOBS, STALL)
                await node_b.stop(signal.SIGKILL)
            await asyncio.sleep(0.5)  # node A's stalled jobs complete; B's stay leased
            held_by_b = await leased_jobs(url)
            certs = {k: v for mine in await asyncio.wait_for(clients, 120)
                     for k, v in mine.items()}
            assert session.down == {1}
    finally:
        await node_a.stop()
        await node_b.stop()
    assert held_by_b, "node B held no CA job when it was killed"
    assert held_by_b <= set(certs)  # finished by node A after the lease ran out
    assert len(certs) == CLIENTS * ORDERS_EACH
    ledger = await _ledger(url)  # the CA's own count: one certificate per order
    assert sorted(request_id for request_id, _ in ledger) == sorted(certs)
    assert dict(ledger) == {order_id: format(cert.serial_number, "x")
                            for order_id, cert in certs.items()}


async def _ledger(url: str) -> list[tuple[str, str]]:
    """(request id, hex serial) of every certificate the local CA recorded."""
    conn = await asyncpg.connect(url)
    try:
        return [(r[0], r[1]) for r in await conn.fetch(
            "SELECT request_id, serial FROM localca_issued WHERE ca = 'local'")]
    finally:
        await conn.close()
