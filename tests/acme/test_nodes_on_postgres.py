"""Two gateway nodes on one PostgreSQL database, every request going to the other node."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509

from gateway import keys
from gateway.app import create_app
from gateway.core.node_nonces import NodeNonces
from tests.acme.flow import issue
from tests.acme.support import FakeValidator, make_settings
from tests.acmeclient import AcmeClient
from tests.alternating import AlternatingSession
from tests.pgserver import PostgresServer

pytestmark = pytest.mark.external("postgres")
BASE = "http://gateway.test"


@pytest.fixture
async def nodes(aiohttp_client: Any, tmp_path: Any,
                postgres_server: PostgresServer) -> tuple[AlternatingSession, list[Any]]:
    url = await postgres_server.new_database()
    settings = make_settings(tmp_path, server={"base_url": BASE}, storage={"url": url},
                             acme={"finalize_wait_seconds": 5.0})
    clients = [await aiohttp_client(create_app(settings, validator=FakeValidator()))
               for _ in range(2)]
    return AlternatingSession(BASE, [(c, "") for c in clients]), clients


async def test_an_order_issues_with_requests_alternating_between_nodes(
        nodes: tuple[AlternatingSession, list[Any]]) -> None:
    session, clients = nodes
    assert all(isinstance(c.app[keys.NONCES], NodeNonces) for c in clients)
    client = AcmeClient(session, f"{BASE}/acme/directory")
    await client.start()
    await client.register()
    _, order, _ = await issue(client, ["a.example.com", "b.example.com"])
    assert order["status"] == "valid"
    resp, pem = await client.post(order["certificate"])
    assert resp.status == 200
    leaf = x509.load_pem_x509_certificates(pem.encode())[0]
    assert {n.value for n in leaf.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value} == {"a.example.com", "b.example.com"}
    assert min(session.sent) >= 5  # both nodes answered a share


async def test_a_nonce_spent_at_one_node_is_refused_at_the_other(
        nodes: tuple[AlternatingSession, list[Any]]) -> None:
    session, _ = nodes
    client = AcmeClient(session, f"{BASE}/acme/directory")
    await client.start()
    spent = client.nonce
    await client.register()  # spends it at one node
    client.nonce = spent
    resp, body = await client.post(client.directory["newOrder"],
                                   {"identifiers": [{"type": "dns", "value": "x.example"}]})
    assert resp.status == 400 and body["type"].endswith(":badNonce"), body


async def test_without_its_database_a_node_answers_503_then_recovers(
        nodes: tuple[AlternatingSession, list[Any]], postgres_server: PostgresServer) -> None:
    session, clients = nodes
    client = AcmeClient(session, f"{BASE}/acme/directory")
    await client.start()
    await client.register()
    postgres_server.stop()
    try:
        async with clients[0].get("/acme/directory") as resp:  # needs no database
            assert resp.status == 200
        async with clients[0].head("/acme/new-nonce") as resp:
            assert resp.status == 200 and resp.headers["Replay-Nonce"]
        resp, body = await client.post(client.directory["newOrder"],
                                       {"identifiers": [{"type": "dns", "value": "x.example"}]})
        assert resp.status == 503 and resp.headers["Retry-After"] == "5", body
        assert "database" in body["detail"] and "postgresql" not in body["detail"]
    finally:
        postgres_server.start()
    _, order = await client.new_order(["x.example"])  # reconnected by itself
    assert order["status"] == "pending"
