"""The engine: concurrency bounds, isolation of slow targets, dispatch and lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from aiohttp import web

from gateway.errors import ErrorKind
from gateway.validation import ChallengeTask
from gateway.validation.engine import ValidationAuthority
from gateway.validation.settings import ValidationSettings
from tests.validation.conftest import MakeVA
from tests.validation.dnsserver import DnsResponder
from tests.validation.test_http01 import KEY_AUTH, PATH, ServerFactory, assert_failed, serve, task

# How long to watch for a request that the bound should hold back.
WATCH_SECONDS = 0.2


class Gate:
    """A responder handler that holds requests until opened and counts them in flight."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.in_flight = 0
        self.most = 0
        self.full = asyncio.Event()
        self.over = asyncio.Event()
        self.open = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        if self.in_flight >= self.bound:
            self.full.set()
        if self.in_flight > self.bound:
            self.over.set()
        await self.open.wait()
        self.in_flight -= 1
        return web.Response(text=KEY_AUTH)


async def run_gated(va: ValidationAuthority, gate: Gate, tasks: list[ChallengeTask]) -> None:
    running = [asyncio.create_task(va.validate(t)) for t in tasks]
    await asyncio.wait_for(gate.full.wait(), 5)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(gate.over.wait(), WATCH_SECONDS)
    gate.open.set()
    outcomes = await asyncio.gather(*running)
    assert all(o.valid for o in outcomes), [o.failure for o in outcomes if o.failure]


async def test_per_target_bound(
    aiohttp_server: ServerFactory, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    gate = Gate(bound=2)
    server = await serve(aiohttp_server, {PATH: gate.handle})
    dns_server.zone.add("web.test", "A", "127.0.0.1")
    va = await make_va(
        http01_port=server.port, per_target_concurrency=2, attempt_timeout_seconds=10
    )

    await run_gated(va, gate, [task() for _ in range(6)])

    assert gate.most == 2


async def test_global_bound(
    aiohttp_server: ServerFactory, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    gate = Gate(bound=3)
    server = await serve(aiohttp_server, {PATH: gate.handle})
    names = [f"n{i}.test" for i in range(7)]
    for name in names:
        dns_server.zone.add(name, "A", "127.0.0.1")
    va = await make_va(http01_port=server.port, concurrency=3, attempt_timeout_seconds=10)

    await run_gated(va, gate, [task(n) for n in names])

    assert gate.most == 3


async def test_slow_target_does_not_delay_others(
    aiohttp_server: ServerFactory, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        if request.headers["Host"].startswith("slow.test"):
            await never.wait()
        return web.Response(text=KEY_AUTH)

    server = await serve(aiohttp_server, {PATH: hang})
    dns_server.zone.add("slow.test", "A", "127.0.0.1")
    dns_server.zone.add("fast.test", "A", "127.0.0.1")
    va = await make_va(
        http01_port=server.port, concurrency=4, per_target_concurrency=2, attempt_timeout_seconds=5
    )
    slow = [asyncio.create_task(va.validate(task("slow.test"))) for _ in range(10)]

    started = time.monotonic()
    fast = await va.validate(task("fast.test"))
    elapsed = time.monotonic() - started

    assert fast.valid, fast.failure
    assert elapsed < 1.0
    never.set()
    await asyncio.gather(*slow)


@pytest.mark.parametrize(
    ("challenge", "identifier_type", "kind"),
    [
        ("http-02", "dns", ErrorKind.MALFORMED),
        ("http-01", "email", ErrorKind.UNSUPPORTED_IDENTIFIER),
    ],
)
async def test_refuses_unknown_types(
    make_va: MakeVA, challenge: str, identifier_type: str, kind: ErrorKind
) -> None:
    va = await make_va()
    outcome = await va.validate(ChallengeTask(identifier_type, "x.test", challenge, "t", "t.k"))
    assert_failed(outcome, kind)


async def test_must_be_started() -> None:
    va = ValidationAuthority(ValidationSettings())
    with pytest.raises(RuntimeError, match="start"):
        await va.validate(task())
    await va.aclose()


async def test_aclose_is_idempotent(make_va: MakeVA) -> None:
    va = await make_va()
    await va.aclose()
    await va.aclose()


async def test_unexpected_error_fails_one_validation(
    make_va: MakeVA, monkeypatch: pytest.MonkeyPatch
) -> None:
    va = await make_va()

    async def broken(*args: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(va._dns01, "check", broken)  # noqa: SLF001 - simulate a bug in a checker
    outcome = await va.validate(ChallengeTask("dns", "x.test", "dns-01", "t", "t.k"))

    assert_failed(outcome, ErrorKind.SERVER_INTERNAL, "internal error")
