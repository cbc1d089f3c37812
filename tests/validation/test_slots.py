"""Slots: taken by a plain call when free, queued first come first served when not."""

from __future__ import annotations

import asyncio

import pytest

from gateway.validation.slots import Slots


def test_free_slots_are_taken_without_waiting() -> None:
    slots = Slots(2)
    assert slots.try_take() and slots.try_take()
    assert not slots.try_take()
    slots.give()
    assert slots.free == 1


async def test_waiters_are_served_in_order() -> None:
    slots = Slots(1)
    await slots.take()
    order: list[int] = []

    async def waiter(n: int) -> None:
        await slots.take()
        order.append(n)
        slots.give()

    tasks = [asyncio.create_task(waiter(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert slots.waiting == 3 and not slots.try_take()  # no jumping the queue
    slots.give()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]
    assert slots.free == 1 and slots.waiting == 0


async def test_a_cancelled_waiter_passes_its_slot_on() -> None:
    slots = Slots(1)
    await slots.take()
    stuck = asyncio.create_task(slots.take())
    follower = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    slots.give()  # handed to `stuck`, which is cancelled before it runs
    stuck.cancel()
    await asyncio.wait_for(follower, 1)
    with pytest.raises(asyncio.CancelledError):
        await stuck
    assert slots.free == 0  # held by the follower
    slots.give()
    assert slots.free == 1


async def test_a_waiter_cancelled_in_line_is_skipped() -> None:
    slots = Slots(1)
    await slots.take()
    gone = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    slots.give()
    assert slots.free == 1 and slots.try_take()


def test_needs_a_slot() -> None:
    with pytest.raises(ValueError):
        Slots(0)
