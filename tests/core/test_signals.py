"""Signals: a wait ends at its notify or its timeout, and leaves nothing behind."""

from __future__ import annotations

import asyncio

from gateway.core.signals import Signals


async def test_notify_wakes_every_waiter_of_that_resource_only() -> None:
    signals = Signals()
    a1 = asyncio.create_task(signals.wait("a", 5.0))
    a2 = asyncio.create_task(signals.wait("a", 5.0))
    b = asyncio.create_task(signals.wait("b", 0.05))
    await asyncio.sleep(0)
    assert signals.waiting == 2
    signals.notify("a")
    assert await a1 and await a2
    assert not await b
    assert signals.waiting == 0


async def test_notify_without_waiters_is_a_no_op_and_not_remembered() -> None:
    signals = Signals()
    signals.notify("a")
    assert not await signals.wait("a", 0.01)  # only changes after the wait began count
    assert signals.waiting == 0


async def test_a_cancelled_wait_is_forgotten() -> None:
    signals = Signals()
    task = asyncio.create_task(signals.wait("a", 5.0))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert signals.waiting == 0
