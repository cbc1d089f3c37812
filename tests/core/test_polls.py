"""Held polls: answered at the first change read, or unchanged at the bound; never busy."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from gateway.core import polls
from gateway.core.polls import PollService, held
from gateway.core.role import ProcessRole


class Reads:
    """A resource read from "the store": ``first`` until ``changes_after`` reads, then ``then``."""

    def __init__(self, first: Any, then: Any, changes_after: int) -> None:
        self.first, self.then, self.changes_after = first, then, changes_after
        self.count = 0

    async def __call__(self) -> Any:
        self.count += 1
        return self.then if self.count >= self.changes_after else self.first


async def at_once(timeout: float) -> None:
    """A signal that cannot know (the work runs elsewhere): returns at once."""


async def test_answers_the_first_changed_read() -> None:
    reads = Reads("pending", "valid", changes_after=2)
    began = time.monotonic()
    assert await held("pending", reads, at_once, 10.0) == "valid"
    assert reads.count == 2 and time.monotonic() - began < 2 * polls.SHARED_RECHECK_SECONDS + 0.5


async def test_answers_unchanged_at_the_bound_rereading_at_the_recheck_pace() -> None:
    reads = Reads("pending", "valid", changes_after=10**6)
    began = time.monotonic()
    assert await held("pending", reads, at_once, 0.5) == "pending"
    assert time.monotonic() - began >= 0.5
    # A signal that returns at once must not turn the hold into a busy loop.
    assert reads.count <= 0.5 / polls.SHARED_RECHECK_SECONDS + 2


async def test_a_signal_ends_the_wait_before_the_recheck() -> None:
    reads = Reads("pending", "valid", changes_after=10**6)
    changed = asyncio.Event()

    async def signalled(timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)

    async def commit() -> None:
        await asyncio.sleep(0.01)
        reads.changes_after = 0  # committed, then signalled
        changed.set()

    committing = asyncio.create_task(commit())
    began = time.monotonic()
    assert await held("pending", reads, signalled, 10.0) == "valid"
    assert time.monotonic() - began < polls.SHARED_RECHECK_SECONDS
    await committing


async def test_zero_bound_reads_nothing_more() -> None:
    reads = Reads("pending", "valid", changes_after=1)
    assert await held("pending", reads, at_once, 0.0) == "pending"
    assert reads.count == 0


class _Orders:
    def __init__(self, reads: Reads) -> None:
        self.reads = reads

    async def get_order(self, order_id: str, account: Any) -> Any:
        return await self.reads()


class _Issuance:
    def __init__(self) -> None:
        self.waited: list[str] = []

    async def wait_for(self, order_id: str, timeout: float) -> None:
        self.waited.append(order_id)


class _Order:
    def __init__(self, status: str) -> None:
        self.status = status


async def test_a_processing_order_is_held_on_its_issuance_job() -> None:
    settings: Any = type("S", (), {"acme": type("A", (), {"poll_wait_seconds": 5.0})})()
    processing, issued = _Order("processing"), _Order("valid")
    reads = Reads(processing, issued, changes_after=3)
    issuance = _Issuance()
    service = PollService(settings, _Orders(reads), issuance)  # type: ignore[arg-type]
    assert await service.order("o1", None) is issued  # type: ignore[arg-type]
    assert issuance.waited and set(issuance.waited) == {"o1"}


async def test_an_order_in_another_state_is_answered_at_once() -> None:
    settings: Any = type("S", (), {"acme": type("A", (), {"poll_wait_seconds": 5.0})})()
    ready = _Order("ready")
    issuance = _Issuance()
    service = PollService(settings, _Orders(Reads(ready, None, 10)), issuance)  # type: ignore[arg-type]
    assert await service.order("o1", None) is ready  # type: ignore[arg-type]
    assert issuance.waited == []


def test_shared_stores_are_reread_sooner() -> None:
    """Other processes' commits signal nothing here: with them, the store is re-read often."""
    settings: Any = None
    alone = PollService(settings, None, None)  # type: ignore[arg-type]
    workers = PollService(settings, None, None, ProcessRole(index=1, count=2))  # type: ignore[arg-type]
    nodes = PollService(settings, None, None, ProcessRole(other_nodes=True))  # type: ignore[arg-type]
    assert alone.recheck == polls.RECHECK_SECONDS
    assert workers.recheck == nodes.recheck == polls.SHARED_RECHECK_SECONDS < alone.recheck
