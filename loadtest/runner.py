"""Schedules units of work (orders, enrollments): closed loop or fixed rate, always bounded.

* Closed loop: ``concurrency`` workers each start the next unit as soon as
  their previous one ends.
* Fixed rate: a unit is due every ``1/rate`` seconds; at most ``concurrency``
  run at once, so an overloaded server shows up as schedule lag (counted) and
  not as an unbounded pile of tasks.

Both stop starting units after ``count`` units or ``duration`` seconds, and
every unit is cut off after ``unit_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from loadtest.acme import AcmeError
from loadtest.stats import Recorder

Work = Callable[[int], Awaitable[object]]


@dataclass(frozen=True)
class Plan:
    """How many units, how fast, for how long."""

    count: int
    concurrency: int = 1
    rate: float = 0.0
    duration: float = 0.0
    unit_timeout: float = 120.0


def first_cause(exc: BaseException) -> BaseException:
    """The first leaf exception of an exception group (a TaskGroup's failure), else ``exc``."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def error_kind(exc: BaseException) -> str:
    """The name a failure is counted under in the report."""
    exc = first_cause(exc)
    if isinstance(exc, AcmeError):
        return exc.kind
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"http-{exc.status}"
    return type(exc).__name__


async def run_unit(work: Work, index: int, recorder: Recorder, limit_seconds: float) -> None:
    """Run one unit, recording its total latency or the kind of its failure."""
    recorder.started_units += 1
    recorder.in_flight += 1
    begin = recorder.clock()
    try:
        async with asyncio.timeout(limit_seconds):
            await work(index)
    except asyncio.CancelledError:
        recorder.failed("cancelled")
        raise
    except Exception as exc:  # noqa: BLE001 - a load run counts every failure and carries on
        cause = first_cause(exc)
        recorder.failed(error_kind(cause), str(cause) or repr(cause))
    else:
        recorder.succeeded((recorder.clock() - begin) * 1000.0)
    finally:
        recorder.in_flight -= 1


class Scheduler:
    """Hands out unit indexes until the plan's count or duration is exhausted."""

    def __init__(self, plan: Plan, recorder: Recorder) -> None:
        self.plan = plan
        self.recorder = recorder
        self.next_index = 0

    def take(self) -> int | None:
        """The next unit index, or None when the run must start no more units."""
        if self.next_index >= self.plan.count:
            return None
        if self.plan.duration and self.recorder.elapsed() >= self.plan.duration:
            return None
        index = self.next_index
        self.next_index += 1
        return index


async def _closed_loop(work: Work, plan: Plan, scheduler: Scheduler, recorder: Recorder) -> None:
    async def worker() -> None:
        while (index := scheduler.take()) is not None:
            await run_unit(work, index, recorder, plan.unit_timeout)

    await asyncio.gather(*(worker() for _ in range(max(1, plan.concurrency))))


async def _fixed_rate(work: Work, plan: Plan, scheduler: Scheduler, recorder: Recorder) -> None:
    slots = asyncio.Semaphore(max(1, plan.concurrency))
    tasks: set[asyncio.Task[None]] = set()

    async def guarded(index: int) -> None:
        try:
            await run_unit(work, index, recorder, plan.unit_timeout)
        finally:
            slots.release()

    while (index := scheduler.take()) is not None:
        due = index / plan.rate
        delay = due - recorder.elapsed()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()
        lag_ms = (recorder.elapsed() - due) * 1000.0
        if lag_ms > 100.0:
            recorder.counters["late_starts"] += 1
        recorder.add("schedule_lag", max(0.0, lag_ms))
        task = asyncio.create_task(guarded(index))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)


async def drive(work: Work, plan: Plan, recorder: Recorder) -> None:
    """Run ``work(0..)`` according to ``plan``, measuring into ``recorder``."""
    recorder.start()
    scheduler = Scheduler(plan, recorder)
    try:
        if plan.rate > 0:
            await _fixed_rate(work, plan, scheduler, recorder)
        else:
            await _closed_loop(work, plan, scheduler, recorder)
    finally:
        recorder.stop()
