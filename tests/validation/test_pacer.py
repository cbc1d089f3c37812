"""The pacer admits at most N callers per event-loop turn, first come first served."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from gateway.validation.pacer import Pacer


async def admissions_by_turn(pacer: Pacer, callers: int) -> list[tuple[int, int]]:
    """(caller, turn) for each admission, with turns counted by a callback rescheduled each turn."""
    loop = asyncio.get_running_loop()
    turn = 0
    running = True

    def tick() -> None:
        nonlocal turn
        turn += 1
        if running:
            loop.call_soon(tick)

    loop.call_soon(tick)
    admitted: list[tuple[int, int]] = []

    async def caller(n: int) -> None:
        await pacer.admit()
        admitted.append((n, turn))

    await asyncio.gather(*(caller(n) for n in range(callers)))
    running = False
    return admitted


@pytest.mark.parametrize("per_turn", [1, 3, 8])
async def test_at_most_n_per_turn_in_order(per_turn: int) -> None:
    admitted = await admissions_by_turn(Pacer(per_turn), 25)

    assert [n for n, _ in admitted] == list(range(25))
    per = Counter(turn for _, turn in admitted)
    assert max(per.values()) <= per_turn
    assert len(per) >= 25 // per_turn


async def test_idle_pacer_admits_at_once() -> None:
    pacer = Pacer(2)
    await pacer.admit()
    await pacer.admit()
    assert pacer.waiting == 0


async def test_cancelled_waiter_does_not_block_others() -> None:
    pacer = Pacer(1)
    await pacer.admit()
    stuck = asyncio.create_task(pacer.admit())
    follower = asyncio.create_task(pacer.admit())
    await asyncio.sleep(0)
    stuck.cancel()
    await asyncio.wait_for(follower, 1)
    assert follower.done() and not follower.cancelled()


async def test_try_admit_takes_room_in_this_turn_only() -> None:
    pacer = Pacer(1)
    assert pacer.try_admit()
    assert not pacer.try_admit()
    await asyncio.sleep(0)  # the next turn has room again
    assert pacer.try_admit()


def test_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError):
        Pacer(0)
