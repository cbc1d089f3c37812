"""/readyz and the database: down when the store cannot answer, checked at most once a
second however many probes arrive, and never a 500."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gateway import keys
from gateway.app import create_app
from gateway.core.readiness import StoreProbe
from gateway.model.store import StoreUnavailable
from tests.acme.support import FakeValidator, make_settings


class _Pinged:
    """A store stand-in whose ping is counted and answers as told."""

    def __init__(self) -> None:
        self.calls = 0
        self.fails: BaseException | None = None
        self.delay = 0.0

    async def ping(self) -> None:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fails is not None:
            raise self.fails


async def test_a_flood_of_probes_costs_one_check() -> None:
    store = _Pinged()
    store.delay = 0.05
    probe = StoreProbe(store, interval=60.0)  # type: ignore[arg-type]
    states = await asyncio.gather(*(probe.state() for _ in range(200)))
    assert store.calls == 1 and all(s == {"state": "up"} for s in states)
    assert await probe.state() == {"state": "up"} and store.calls == 1  # within the interval


async def test_down_then_up_again_is_seen_after_the_interval() -> None:
    store = _Pinged()
    store.fails = StoreUnavailable("db.example:5432: ConnectionRefusedError")
    probe = StoreProbe(store, interval=0.0)  # type: ignore[arg-type]
    down = await probe.state()
    assert down == {"state": "down", "reason": "not reachable"}  # no host or driver text
    store.fails = None
    assert await probe.state() == {"state": "up"} and store.calls == 2


@pytest.mark.parametrize(("fault", "reason"), [
    ("hang", "no answer within 0.05 s"), ("bug", "the check failed")])
async def test_a_hanging_or_failing_check_is_down_not_an_error(fault: str, reason: str) -> None:
    store = _Pinged()
    if fault == "hang":
        store.delay = 5.0
    else:
        store.fails = RuntimeError("unexpected")
    probe = StoreProbe(store, interval=0.0, timeout=0.05)  # type: ignore[arg-type]
    assert await probe.state() == {"state": "down", "reason": reason}


async def test_a_probe_that_goes_away_does_not_cancel_the_check_for_others() -> None:
    store = _Pinged()
    store.delay = 0.05
    probe = StoreProbe(store, interval=60.0)  # type: ignore[arg-type]
    first = asyncio.create_task(probe.state())
    await asyncio.sleep(0.01)
    second = asyncio.create_task(probe.state())
    first.cancel()
    assert await second == {"state": "up"} and store.calls == 1


async def test_readyz_reports_the_database(aiohttp_client: Any, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(make_settings(tmp_path), validator=FakeValidator())
    http = await aiohttp_client(app)
    resp = await http.get("/readyz")
    body = await resp.json()
    assert resp.status == 200 and body["database"] == {"state": "up"}  # a real SQLite ping
    core = app[keys.CORE]
    core.database = StoreProbe(core.orders.store, interval=0.0)

    async def unreachable() -> None:
        raise StoreUnavailable("disk gone")

    monkeypatch.setattr(core.orders.store, "ping", unreachable)
    resp = await http.get("/readyz")
    body = await resp.json()
    assert resp.status == 503 and body["status"] == "degraded"
    assert body["database"] == {"state": "down", "reason": "not reachable"}
