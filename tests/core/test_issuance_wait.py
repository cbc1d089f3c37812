"""The bounded wait of finalize and of EST/poll requests on a running CA job."""

from __future__ import annotations

import asyncio

import pytest

from gateway.core.issuance import settled_within


async def test_returns_when_the_task_finishes() -> None:
    gate = asyncio.Event()

    async def job() -> str:
        await gate.wait()
        return "issued"

    task = asyncio.create_task(job())
    waiting = asyncio.create_task(settled_within(task, 30))
    await asyncio.sleep(0)
    assert not waiting.done()
    gate.set()
    await asyncio.wait_for(waiting, 5)
    assert task.result() == "issued"


async def test_a_timeout_leaves_the_task_running() -> None:
    gate = asyncio.Event()
    task = asyncio.create_task(gate.wait())
    await settled_within(task, 0.01)
    assert not task.done()
    gate.set()
    await task


async def test_a_failed_task_is_not_raised_and_a_done_one_returns_at_once() -> None:
    async def broken() -> None:
        raise RuntimeError("connector bug")

    task = asyncio.create_task(broken())
    await settled_within(task, 5)
    assert isinstance(task.exception(), RuntimeError)
    await settled_within(task, 5)  # already done


async def test_cancelling_the_waiter_leaves_the_task_alone() -> None:
    gate = asyncio.Event()
    task = asyncio.create_task(gate.wait())
    waiting = asyncio.create_task(settled_within(task, 30))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not task.done() and not task.cancelled()
    gate.set()
    await task
