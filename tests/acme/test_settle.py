"""A validation's outcome moves the order: in the same commit for one name, after it for several."""

from __future__ import annotations

from typing import Any

from gateway import keys
from gateway.app import create_app
from gateway.errors import ErrorKind
from gateway.model.records import DEACTIVATED, INVALID, PENDING, PROCESSING, VALID
from gateway.model.store import Update
from gateway.validation import ValidationFailure
from tests.acme.support import FakeValidator, Gateway, make_settings


async def _gateway(aiohttp_client: Any, tmp_path: Any, wait: float = 2.0) -> Gateway:
    validator = FakeValidator()
    settings = make_settings(tmp_path, acme={"challenge_wait_seconds": wait})
    return Gateway(await aiohttp_client(create_app(settings, validator=validator)), validator,
                   settings)


async def _validate_all(c: Any, order: dict[str, Any]) -> list[dict[str, Any]]:
    answers = []
    for url in order["authorizations"]:
        _, authz = await c.post(url)
        http01 = next(ch for ch in authz["challenges"] if ch["type"] == "http-01")
        _, body = await c.post(http01["url"], {})
        answers.append(body)
    return answers


async def test_one_name_order_is_ready_when_the_challenge_answers(
        aiohttp_client: Any, tmp_path: Any) -> None:
    gateway = await _gateway(aiohttp_client, tmp_path)
    c = await gateway.ready_client()
    order_url, order = await c.new_order(["one.example.com"])
    [chall] = await _validate_all(c, order)
    assert chall["status"] == "valid"
    _, now = await c.post(order_url)
    assert now["status"] == "ready"  # no poll needed: settled in the validation's commit


async def test_two_name_order_is_ready_once_both_are_valid(
        aiohttp_client: Any, tmp_path: Any) -> None:
    gateway = await _gateway(aiohttp_client, tmp_path)
    c = await gateway.ready_client()
    order_url, order = await c.new_order(["a.example.com", "b.example.com"])
    first = order["authorizations"][0]
    _, authz = await c.post(first)
    http01 = next(ch for ch in authz["challenges"] if ch["type"] == "http-01")
    await c.post(http01["url"], {})
    _, half = await c.post(order_url)
    assert half["status"] == "pending"  # one authorization still pending
    _, second = await c.post(order["authorizations"][1])
    http01 = next(ch for ch in second["challenges"] if ch["type"] == "http-01")
    await c.post(http01["url"], {})
    _, done = await c.post(order_url)
    assert done["status"] == "ready"


async def test_failed_validation_invalidates_a_one_name_order(
        aiohttp_client: Any, tmp_path: Any) -> None:
    gateway = await _gateway(aiohttp_client, tmp_path)
    gateway.validator.failure = ValidationFailure(ErrorKind.CONNECTION, "refused")
    c = await gateway.ready_client()
    order_url, order = await c.new_order(["bad.example.com"])
    [chall] = await _validate_all(c, order)
    assert chall["status"] == "invalid"
    _, now = await c.post(order_url)
    assert now["status"] == "invalid"
    sub = now["error"]["subproblems"][0]
    assert sub["identifier"] == {"type": "dns", "value": "bad.example.com"}
    assert sub["type"].endswith(":connection")


async def test_outcome_is_recorded_when_the_order_moved_meanwhile(
        aiohttp_client: Any, tmp_path: Any) -> None:
    """The order changed after record_validation read it: the challenge and authorization
    are still recorded (the order's own move is dropped, not the outcome), and the order
    keeps what the other writer set. (A copy passed by the caller: see
    test_an_order_copy_that_moved_since_does_not_stop_the_outcome.)"""
    gateway = await _gateway(aiohttp_client, tmp_path, wait=0.0)
    app = gateway.http.server.app
    core = app[keys.CORE]
    store = core.orders.store
    c = await gateway.ready_client()
    _, order = await c.new_order(["raced.example.com"])
    authz_id = order["authorizations"][0].rsplit("/", 1)[1]
    authz = await store.get_authz(authz_id)
    stored = await store.get_order(authz.order_id)
    chall = authz.challenges[0]
    started = chall.moved(PROCESSING)
    assert await store.apply([Update(started, expect=PENDING)])
    moved = stored.moved(INVALID, error={"kind": "malformed", "detail": "raced"})
    real_get_order = store.get_order

    async def stale_then_invalid(oid: str) -> Any:
        found = await real_get_order(oid)
        await store.apply([Update(moved, expect=PENDING)])  # another writer, after the read
        store.get_order = real_get_order
        return found

    store.get_order = stale_then_invalid
    committed = await core.orders.record_validation(authz, started, None, ())
    assert committed is not None and committed.status == VALID
    assert committed.challenge(chall.id).status == VALID
    fresh = await store.get_authz(authz_id)
    assert fresh.status == VALID and fresh.challenge(chall.id).status == VALID
    final = await store.get_order(stored.id)
    assert final is not None and final.status == INVALID and final.error == moved.error


async def test_outcome_is_recorded_when_the_authorization_moved_meanwhile(
        aiohttp_client: Any, tmp_path: Any) -> None:
    """record_validation first commits against the authorization it was given, unread; when
    that one moved since (here: deactivated), the outcome is recorded against a fresh read,
    the authorization keeps its new status, and the audit event is written once."""
    gateway = await _gateway(aiohttp_client, tmp_path, wait=0.0)
    core = gateway.http.server.app[keys.CORE]
    store = core.orders.store
    c = await gateway.ready_client()
    _, order = await c.new_order(["moved.example.com"])
    authz = await store.get_authz(order["authorizations"][0].rsplit("/", 1)[1])
    chall = authz.challenges[0]
    started = chall.moved(PROCESSING)
    assert await store.apply([Update(started, expect=PENDING)])
    held = authz.with_challenge(started)  # what the validation holds: pending
    assert await store.apply([Update(authz.moved(DEACTIVATED), expect=PENDING)])
    committed = await core.orders.record_validation(held, started, None, ())
    assert committed is not None and committed.status == DEACTIVATED
    assert committed.challenge(chall.id).status == VALID
    fresh = await store.get_authz(authz.id)
    assert fresh.status == DEACTIVATED and fresh.challenge(chall.id).status == VALID
    events = [r["event"] for r in await store.audit_of_request(authz.order_id, 50)]
    assert events.count("validated") == 1


async def test_the_outcome_of_a_challenge_post_reads_no_order_again(
        aiohttp_client: Any, tmp_path: Any) -> None:
    """The challenge POST reads the order with the authorization; the validation's commit
    settles that copy instead of reading the order a second time."""
    gateway = await _gateway(aiohttp_client, tmp_path)
    store = gateway.http.server.app[keys.CORE].orders.store
    c = await gateway.ready_client()
    order_url, order = await c.new_order(["once.example.com"])
    _, authz = await c.post(order["authorizations"][0])
    http01 = next(ch for ch in authz["challenges"] if ch["type"] == "http-01")
    real_get_order = store.get_order
    reads: list[str] = []

    async def counted(oid: str) -> Any:
        reads.append(oid)
        return await real_get_order(oid)

    store.get_order = counted
    _, chall = await c.post(http01["url"], {})
    store.get_order = real_get_order
    assert chall["status"] == "valid" and reads == []
    _, now = await c.post(order_url)
    assert now["status"] == "ready"


async def test_an_order_copy_that_moved_since_does_not_stop_the_outcome(
        aiohttp_client: Any, tmp_path: Any) -> None:
    """The copy given to record_validation may be older than the row: its compare-and-set
    fails, the outcome is committed without it, and the order keeps what it became."""
    gateway = await _gateway(aiohttp_client, tmp_path, wait=0.0)
    core = gateway.http.server.app[keys.CORE]
    store = core.orders.store
    c = await gateway.ready_client()
    _, order = await c.new_order(["stale.example.com"])
    authz = await store.get_authz(order["authorizations"][0].rsplit("/", 1)[1])
    copy = await store.get_order(authz.order_id)
    assert copy is not None
    started = authz.challenges[0].moved(PROCESSING)
    assert await store.apply([Update(started, expect=PENDING)])
    raced = copy.moved(INVALID, error={"kind": "malformed", "detail": "raced"})
    assert await store.apply([Update(raced, expect=PENDING)])
    committed = await core.orders.record_validation(
        authz.with_challenge(started), started, None, (), order=copy)
    assert committed is not None and committed.status == VALID
    assert (await store.get_order(copy.id)) == raced
