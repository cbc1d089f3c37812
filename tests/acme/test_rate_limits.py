"""Rate limits through the ACME front end: a rateLimited problem, 429 and a Retry-After that holds.

Each test fills one bucket, reads the refusal, moves the fake clock by exactly
the Retry-After it was given, and sees the same request pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import ClientResponse

from gateway import keys
from gateway.app import create_app
from gateway.errors import ErrorKind
from gateway.model.clock import FakeClock
from gateway.validation import ValidationFailure
from tests.acme.flow import issue
from tests.acme.support import FakeValidator, Gateway, eventually, make_settings
from tests.acmeclient import AcmeClient

RATE_LIMITED = "urn:ietf:params:acme:error:rateLimited"
# Every limit off but the one a test turns on, so each test fills exactly one bucket.
OFF = {name: 0 for name in (
    "new_orders_per_account", "failed_validations_per_account_and_name",
    "certificates_per_registered_domain", "est_enrollments_per_requester",
    "new_accounts_per_ip", "new_nonces_per_ip", "requests_per_ip")}

Start = Callable[..., Awaitable[tuple[Gateway, FakeClock]]]


@pytest.fixture
def start(aiohttp_client: Any, tmp_path: Any) -> Start:
    """A gateway on a fake clock with these [rate_limits] (and optional profiles)."""
    async def started(limits: dict[str, Any], **tables: Any) -> tuple[Gateway, FakeClock]:
        clock, validator = FakeClock(), FakeValidator()
        settings = make_settings(tmp_path, rate_limits={**OFF, **limits}, **tables)
        app = create_app(settings, validator=validator, clock=clock)
        return Gateway(await aiohttp_client(app), validator, settings), clock
    return started


async def refused(resp: ClientResponse, body: Any, limit: str) -> int:
    """Assert a rateLimited problem naming ``limit``; its Retry-After in seconds."""
    assert resp.status == 429, body
    assert body["type"] == RATE_LIMITED and limit in body["detail"], body
    return int(resp.headers["Retry-After"])


async def post_order(c: AcmeClient, names: list[str],
                     profile: str | None = None) -> tuple[ClientResponse, Any]:
    payload: dict[str, Any] = {"identifiers": [{"type": "dns", "value": n} for n in names]}
    if profile:
        payload["profile"] = profile
    return await c.post(c.directory["newOrder"], payload)


async def test_new_orders_per_account(start: Start) -> None:
    """3 orders per 3 h: the fourth waits one hour, the time one order takes to refill."""
    gw, clock = await start({"new_orders_per_account": 3})
    c = await gw.ready_client()
    for i in range(3):
        await c.new_order([f"www{i}.example.com"])
    wait = await refused(*await post_order(c, ["late.example.com"]), "new_orders_per_account")
    assert wait == 3600
    clock.advance(wait - 1)
    assert (await post_order(c, ["late.example.com"]))[0].status == 429
    clock.advance(1)
    assert (await post_order(c, ["late.example.com"]))[0].status == 201
    other = await gw.ready_client()  # another account has a bucket of its own
    assert (await post_order(other, ["x.example.com"]))[0].status == 201


async def test_a_refusal_is_audited(start: Start) -> None:
    gw, _ = await start({"new_orders_per_account": 1})
    c = await gw.ready_client()
    await c.new_order(["a.example.com"])
    await refused(*await post_order(c, ["b.example.com"]), "new_orders_per_account")
    core = gw.http.app[keys.CORE]
    rows = [r for r in await core.audit.store.audit_rows(0, 100) if r["event"] == "rate_limited"]
    assert len(rows) == 1 and rows[0]["identifiers"] == '["b.example.com"]'
    assert rows[0]["result"] == ErrorKind.RATE_LIMITED.value


async def test_failed_validations_per_account_and_name(start: Start) -> None:
    """Two failures of a name in an hour: its next order waits; other names do not."""
    gw, clock = await start({"failed_validations_per_account_and_name":
                             {"count": 2, "period_seconds": 3600}})
    gw.validator.failure = ValidationFailure(ErrorKind.CONNECTION, "nothing listens")
    c = await gw.ready_client()
    for _ in range(2):
        _, order = await c.new_order(["flaky.example.com"])
        _, authz = await c.post(order["authorizations"][0])
        await c.post(authz["challenges"][0]["url"], {})
        await wait_for_status(c, order["authorizations"][0], "invalid")
    wait = await refused(*await post_order(c, ["flaky.example.com", "fine.example.com"]),
                         "failed_validations_per_account_and_name")
    assert wait == 1800
    assert (await post_order(c, ["fine.example.com"]))[0].status == 201
    assert (await post_order(c, ["*.flaky.example.com"]))[0].status == 429  # same name
    clock.advance(wait)
    assert (await post_order(c, ["flaky.example.com"]))[0].status == 201


async def wait_for_status(c: AcmeClient, url: str, status: str) -> None:
    async def reached() -> bool:
        return bool((await c.post(url))[1]["status"] == status)

    await eventually(reached)


async def test_certificates_per_registered_domain(start: Start) -> None:
    """Two certificates under example.co.uk fill its bucket; other.co.uk has its own."""
    gw, clock = await start({"certificates_per_registered_domain": 2})
    c = await gw.ready_client()
    await issue(c, ["a.example.co.uk"])
    await issue(c, ["b.example.co.uk", "www.b.example.co.uk"])  # one certificate, one count
    wait = await refused(*await post_order(c, ["c.example.co.uk"]),
                         "certificates_per_registered_domain")
    assert wait == 7 * 86400 // 2  # half a week: the time one certificate takes to refill
    _, body = await post_order(c, ["example.co.uk"])
    assert "registered domain example.co.uk" in body["detail"]
    assert (await post_order(c, ["other.co.uk"]))[0].status == 201
    clock.advance(wait)
    assert (await post_order(c, ["c.example.co.uk"]))[0].status == 201


async def test_new_accounts_per_ip(start: Start) -> None:
    gw, clock = await start({"new_accounts_per_ip": {"count": 2, "period_seconds": 600}})
    for _ in range(2):
        await gw.ready_client()
    c = gw.client()
    await c.start()
    resp, body = await c.post(c.directory["newAccount"], {"termsOfServiceAgreed": True},
                              use_jwk=True)
    wait = await refused(resp, body, "new_accounts_per_ip")
    assert wait == 300
    clock.advance(wait)
    await c.register()


@pytest.mark.parametrize("limit,path,passed,wait", [
    ("new_nonces_per_ip", "/acme/new-nonce", 204, 5),   # 2 per 10 s
    ("requests_per_ip", "/acme/directory", 200, 5),
])
async def test_per_address_limits(start: Start, limit: str, path: str, passed: int,
                                  wait: int) -> None:
    """Counted in memory: two GETs pass, the third waits one token's time (5 s)."""
    gw, clock = await start({limit: {"count": 2, "period_seconds": 10}})
    for _ in range(2):
        assert (await gw.http.get(path)).status == passed
    resp = await gw.http.get(path)
    assert await refused(resp, await resp.json(), limit) == wait
    assert resp.headers["Replay-Nonce"]  # a refusal still carries a fresh nonce
    clock.advance(wait - 0.5)
    assert (await gw.http.get(path)).status == 429
    clock.advance(0.5)
    assert (await gw.http.get(path)).status == passed


@pytest.mark.parametrize("exemption", [{"exempt_ips": ["127.0.0.0/8"]},
                                       {"exempt_ips": ["10.0.0.1", "::1", "127.0.0.1"]}])
async def test_an_exempt_address_is_not_limited(start: Start, exemption: dict[str, Any]) -> None:
    gw, _ = await start({"requests_per_ip": 2, "new_accounts_per_ip": 1, **exemption})
    for _ in range(3):
        await gw.ready_client()


async def test_an_exempt_account_is_not_limited(start: Start) -> None:
    gw, _ = await start({"new_orders_per_account": 1})
    c = await gw.ready_client()
    assert c.kid is not None
    account_id = c.kid.rsplit("/", 1)[1]
    limits = gw.http.app[keys.CORE].limits  # the account id is known only now
    limits.settings = replace(limits.settings, exempt_accounts=frozenset({account_id}))
    for i in range(3):
        await c.new_order([f"n{i}.example.com"])


async def test_a_profile_overrides_the_global_limit(start: Start) -> None:
    """Profile "bulk" allows 3 orders per account, the default profile 1."""
    profiles = {"default": {"ca": "local"},
                "bulk": {"ca": "local", "rate_limits": {"new_orders_per_account": 3}}}
    gw, _ = await start({"new_orders_per_account": 1}, profiles=profiles)
    c = await gw.ready_client()
    for i in range(3):
        assert (await post_order(c, [f"b{i}.example.com"], "bulk"))[0].status == 201
    assert (await post_order(c, ["b3.example.com"], "bulk"))[0].status == 429
    other = await gw.ready_client()
    assert (await post_order(other, ["d0.example.com"]))[0].status == 201
    await refused(*await post_order(other, ["d1.example.com"]), "new_orders_per_account")
