"""Deadlines on one loop timer: callbacks run when due, timeouts behave as asyncio.timeout_at."""

from __future__ import annotations

import asyncio

import pytest

from gateway.validation.deadlines import DeadlineQueue


async def test_callbacks_run_when_due_in_order_and_cancelled_ones_never() -> None:
    queue = DeadlineQueue()
    loop = asyncio.get_running_loop()
    ran: list[str] = []
    now = loop.time()
    queue.call_at(now + 0.02, lambda: ran.append("second"))
    queue.call_at(now + 0.01, lambda: ran.append("first"))  # earlier: the timer is re-armed
    queue.call_at(now + 0.015, lambda: ran.append("never")).cancel()

    await asyncio.sleep(0.05)

    assert ran == ["first", "second"]
    assert len(queue) == 0


async def test_ended_deadlines_are_dropped_as_new_ones_come() -> None:
    queue = DeadlineQueue()
    now = asyncio.get_running_loop().time()
    for n in range(100):
        queue.call_at(now + 10 + n, lambda: None).cancel()
    assert len(queue) == 1  # each one left at the top is dropped by the next


async def test_one_timer_serves_a_stream_of_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    queue = DeadlineQueue()
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    real_call_at = loop.call_at

    def call_at(when: float, callback: object, *args: object) -> asyncio.TimerHandle:
        armed.append(when)
        return real_call_at(when, callback, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "call_at", call_at)
    for _ in range(50):
        queue.call_at(loop.time() + 10, lambda: None).cancel()
    assert len(armed) == 1


async def test_timeout_scope_raises_timeout_error_and_uncancels() -> None:
    queue = DeadlineQueue()
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    with pytest.raises(TimeoutError):
        with queue.timeout_at(loop.time() + 0.01) as scope:
            await asyncio.sleep(1)

    assert scope.expired
    assert task.cancelling() == 0


async def test_timeout_scope_lets_a_quick_block_finish() -> None:
    queue = DeadlineQueue()
    loop = asyncio.get_running_loop()
    with queue.timeout_at(loop.time() + 1) as scope:
        await asyncio.sleep(0)
    assert not scope.expired
    await asyncio.sleep(0)  # no stray cancellation is pending for this task


async def test_timeout_scopes_nest_and_the_inner_one_fires() -> None:
    queue = DeadlineQueue()
    loop = asyncio.get_running_loop()
    with queue.timeout_at(loop.time() + 5) as outer:
        with pytest.raises(TimeoutError):
            with queue.timeout_at(loop.time() + 0.01):
                await asyncio.sleep(1)
        await asyncio.sleep(0)
    assert not outer.expired


async def test_outside_cancellation_is_not_turned_into_a_timeout() -> None:
    queue = DeadlineQueue()
    loop = asyncio.get_running_loop()
    started = asyncio.Event()

    async def body() -> None:
        with queue.timeout_at(loop.time() + 5):
            started.set()
            await asyncio.sleep(5)

    task = asyncio.create_task(body())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
