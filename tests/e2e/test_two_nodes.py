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
import base64
import contextlib
import hashlib
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from cryptography import x509

from tests.acmeclient import AcmeClient, b64, make_csr
from tests.alternating import AlternatingSession
from tests.e2e.harness import ChallTestSrv, GatewayProcess, free_port
from tests.pgserver import PostgresServer

pytestmark = pytest.mark.external("postgres")
BASE = "https://acme.test"
CLIENTS, ORDERS_EACH = 8, 5
# The lease outlasts the stall and the look at the jobs after it: what is leased then is B's.
CLAIM_SECONDS = 5
STALL = 1.5


class Node(GatewayProcess):
    """A gateway process with its own config and log, on the data directory all nodes share."""

    @property
    def tls_cert(self) -> Path:
        return Path(self.doc["server"]["data_dir"]) / "tls" / "server.pem"


class PatientClient(AcmeClient):
    """An ACME client that retries a spent nonce and a 503, as certbot and lego do."""

    async def post(self, url: str, payload: Any = None, **kw: Any) -> Any:
        for _ in range(30):
            resp, body = await super().post(url, payload, **kw)
            if resp.status == 503:
                await asyncio.sleep(0.2)
                continue
            if resp.status != 400 or not str(body.get("type", "")).endswith(":badNonce"):
                return resp, body
        raise AssertionError(f"{url}: still refused after 30 tries: {body}")


class Load:
    """What the clients did, for the test to act on midway and check at the end."""

    def __init__(self) -> None:
        self.orders: list[str] = []  # every order URL a client was given
        self.finalized = 0
        self.progress = asyncio.Event()

    def finalize_done(self) -> None:
        self.finalized += 1
        self.progress.set()

    async def wait_finalized(self, count: int) -> None:
        while self.finalized < count:
            self.progress.clear()
            await self.progress.wait()


async def poll(c: AcmeClient, url: str, done: set[str], timeout: float = 60.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        _, body = await c.post(url)
        if body["status"] in done:
            return body  # type: ignore[no-any-return]
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.2)


async def one_order(c: AcmeClient, dns: ChallTestSrv, name: str, load: Load) -> str:
    """An order up to its finalize; its URL."""
    order_url, order = await c.new_order([name])
    load.orders.append(order_url)
    _, authz = await c.post(order["authorizations"][0])
    chall = next(ch for ch in authz["challenges"] if ch["type"] == "dns-01")
    digest = hashlib.sha256(c.key_authorization(chall["token"]).encode()).digest()
    await dns.set_txt(f"_acme-challenge.{name}.",
                      base64.urlsafe_b64encode(digest).rstrip(b"=").decode())
    resp, body = await c.post(chall["url"], {})
    assert resp.status == 200, body
    await poll(c, order["authorizations"][0], {"valid", "invalid"})
    csr, _ = make_csr([name])
    resp, _ = await c.post(order["finalize"], {"csr": b64(csr)})
    assert resp.status == 200
    load.finalize_done()
    return order_url


async def client_run(session: AlternatingSession, dns: ChallTestSrv, index: int,
                     load: Load) -> dict[str, x509.Certificate]:
    """One client's orders, each followed to its end; their certificates by order id."""
    c = PatientClient(session, f"{BASE}/acme/directory")
    await c.start()
    await c.register()
    urls = []
    for n in range(ORDERS_EACH):
        urls.append(await one_order(c, dns, f"c{index}-o{n}.nodes.example", load))
    certs = {}
    for order_url in urls:
        order = await poll(c, order_url, {"valid", "invalid"})
        assert order["status"] == "valid", order  # the local CA refuses nothing here
        resp, pem = await c.post(order["certificate"])
        assert resp.status == 200
        certs[order_url.rsplit("/", 1)[1]] = x509.load_pem_x509_certificates(pem.encode())[0]
    return certs


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
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    node_a, node_b = Node(tmp_path / "a", doc), Node(tmp_path / "b", doc)
    await node_a.start()  # first: creates the CA and the TLS certificate both nodes use
    await node_b.start()
    load = Load()
    try:
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=node_a.ssl_context())) as http:
            session = AlternatingSession(BASE, [(http, f"https://127.0.0.1:{node_a.port}"),
                                                (http, f"https://127.0.0.1:{node_b.port}")])
            clients = asyncio.gather(*(client_run(session, dns, i, load)
                                       for i in range(CLIENTS)))
            await load.wait_finalized(CLIENTS * ORDERS_EACH // 3)
            async with ledger_stalled(url):
                # Finalizes reach both nodes; their jobs sign and wait for the ledger.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(load.wait_finalized(load.finalized + 4), STALL)
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
