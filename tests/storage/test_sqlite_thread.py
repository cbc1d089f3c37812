"""The SQLite writer's thread: calls run in order off the loop, results and errors come back."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gateway.storage.sqlite_thread import WriterThread


async def test_calls_run_in_order_on_the_thread_and_answer_the_loop() -> None:
    thread = WriterThread("test-writer")
    thread.start(asyncio.get_running_loop())
    seen: list[tuple[int, str]] = []

    def call(i: int) -> int:
        seen.append((i, threading.current_thread().name))
        return i * 2

    results = await asyncio.gather(*(thread.run(lambda i=i: call(i)) for i in range(5)))
    thread.stop()
    assert results == [0, 2, 4, 6, 8]
    assert seen == [(i, "test-writer") for i in range(5)]


async def test_an_error_reaches_the_caller_and_the_thread_goes_on() -> None:
    thread = WriterThread("test-writer")
    thread.start(asyncio.get_running_loop())

    def fail() -> None:
        raise ValueError("disk full")

    with pytest.raises(ValueError, match="disk full"):
        await thread.run(fail)
    assert await thread.run(lambda: "still here") == "still here"
    thread.stop()


async def test_stop_finishes_queued_calls_and_a_cancelled_wait_is_left_alone() -> None:
    thread = WriterThread("test-writer")
    thread.start(asyncio.get_running_loop())
    gate = threading.Event()
    done: list[str] = []
    first = thread.run(lambda: gate.wait(5))
    second = thread.run(lambda: done.append("second"))
    second.cancel()  # the caller stops waiting; the call still runs
    gate.set()
    assert await first is True
    thread.stop()
    assert done == ["second"]
    await asyncio.sleep(0)  # the thread's late answer to the cancelled future is dropped
