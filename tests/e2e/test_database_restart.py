"""PostgreSQL stopped for 10 s under load, then started: nothing lost, no 500.

Two nodes keep serving while their database is down: what needs no database
(the directory, new nonces) is answered, everything else gets 503 with
Retry-After, /readyz says the database is down, and the nodes reconnect by
themselves once it is back. Every
order a client was told about ends valid, with one certificate each at the
CA, and no request was ever answered 500.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.alternating import AlternatingSession
from tests.e2e.acme_load import BASE, Load, Node, PatientClient, client_run
from tests.e2e.harness import ChallTestSrv, free_port
from tests.pgserver import PostgresServer

pytestmark = pytest.mark.external("postgres")
CLIENTS, ORDERS_EACH = 6, 5
OUTAGE_SECONDS = 10


async def test_a_database_restart_under_load_loses_no_order(
        tmp_path: Path, dns: ChallTestSrv, postgres_server: PostgresServer) -> None:
    url = await postgres_server.new_database()
    doc = {
        "server": {"data_dir": str(tmp_path / "data"), "base_url": BASE, "access_log": False},
        "storage": {"url": url, "pool_size": 4},
        "acme": {"retry_after_seconds": 1, "finalize_wait_seconds": 0.5},
        "validation": {"resolvers": [f"127.0.0.1:{dns.dns_port}"], "allow_loopback": True,
                       "http01_port": free_port(), "attempt_timeout_seconds": 5},
        "jobs": {"claim_seconds": 3, "scan_period_seconds": 0.2, "retry_base_seconds": 0.2,
                 "retry_cap_seconds": 1, "max_attempts": 100},
    }
    nodes = [Node(tmp_path / name, doc) for name in ("a", "b")]
    for node in nodes:
        await node.start()
    PatientClient.statuses = []
    load = Load()
    try:
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=nodes[0].ssl_context())) as http:
            session = AlternatingSession(
                BASE, [(http, f"https://127.0.0.1:{node.port}") for node in nodes])
            clients = asyncio.gather(*(client_run(session, dns, i, load, ORDERS_EACH)
                                       for i in range(CLIENTS)))
            await load.wait_finalized(CLIENTS * ORDERS_EACH // 3)
            postgres_server.stop()
            try:
                await asyncio.sleep(OUTAGE_SECONDS / 2)
                async with http.head(f"https://127.0.0.1:{nodes[1].port}/acme/new-nonce") as r:
                    assert r.status == 200 and r.headers["Replay-Nonce"]  # needs no database
                async with http.get(f"https://127.0.0.1:{nodes[0].port}/readyz") as r:
                    # the load balancer's check takes the node out while it cannot serve
                    assert r.status == 503
                    assert (await r.json())["database"]["state"] == "down"
                await asyncio.sleep(OUTAGE_SECONDS / 2)
            finally:
                postgres_server.start()
            certs = {k: v for mine in await asyncio.wait_for(clients, 180)
                     for k, v in mine.items()}
            async with http.get(f"https://127.0.0.1:{nodes[0].port}/readyz") as r:
                assert r.status == 200 and (await r.json())["database"] == {"state": "up"}
    finally:
        for node in nodes:
            await node.stop()
    statuses = PatientClient.statuses
    assert 500 not in statuses
    assert statuses.count(503) > 0  # the documented answer while the database was down
    assert len(certs) == CLIENTS * ORDERS_EACH
    conn = await asyncpg.connect(url)
    try:
        issued = await conn.fetch("SELECT request_id, serial FROM localca_issued")
    finally:
        await conn.close()
    assert sorted(r[0] for r in issued) == sorted(certs)  # one certificate per order
