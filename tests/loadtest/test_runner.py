"""Scheduling: closed loop and fixed rate, bounded by count, duration and unit timeout."""

from __future__ import annotations

import asyncio

from loadtest.acme import AcmeError
from loadtest.runner import Plan, drive
from loadtest.stats import Recorder


class Probe:
    """A unit of work that tracks how many run at once and fails on chosen indexes."""

    def __init__(self, delay: float = 0.01, fail: dict[int, Exception] | None = None) -> None:
        self.delay = delay
        self.fail = fail or {}
        self.running = 0
        self.peak = 0
        self.seen: list[int] = []

    async def __call__(self, index: int) -> None:
        self.seen.append(index)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(self.delay)
            if index in self.fail:
                raise self.fail[index]
        finally:
            self.running -= 1


async def test_closed_loop_runs_exactly_n_with_c_in_flight() -> None:
    probe, recorder = Probe(), Recorder()
    await drive(probe, Plan(count=12, concurrency=3), recorder)
    assert sorted(probe.seen) == list(range(12))
    assert probe.peak == 3
    assert recorder.ok == 12 and recorder.in_flight == 0


async def test_failures_are_counted_by_kind() -> None:
    probe = Probe(
        fail={1: AcmeError("rateLimited"), 2: ConnectionResetError(), 3: AcmeError("rateLimited")}
    )
    recorder = Recorder()
    await drive(probe, Plan(count=5, concurrency=2), recorder)
    assert recorder.ok == 2
    assert dict(recorder.errors) == {"rateLimited": 2, "ConnectionResetError": 1}
    assert recorder.error_samples["rateLimited"] == "rateLimited"
    assert recorder.error_samples["ConnectionResetError"] == "ConnectionResetError()"


async def test_a_failed_task_group_counts_as_its_first_error() -> None:
    async def work(index: int) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(asyncio.sleep(5))
            group.create_task(
                Probe(delay=0, fail={index: AcmeError("authz-invalid", "dns")})(index)
            )

    recorder = Recorder()
    await drive(work, Plan(count=1), recorder)
    assert dict(recorder.errors) == {"authz-invalid": 1}
    assert recorder.error_samples["authz-invalid"] == "authz-invalid: dns"
    assert recorder.elapsed() < 1.0  # the sibling was cancelled, not awaited


async def test_unit_timeout_cuts_off_slow_units() -> None:
    recorder = Recorder()
    await drive(Probe(delay=5.0), Plan(count=2, concurrency=2, unit_timeout=0.05), recorder)
    assert dict(recorder.errors) == {"timeout": 2}


async def test_duration_stops_starting_units() -> None:
    probe, recorder = Probe(delay=0.02), Recorder()
    await drive(probe, Plan(count=10_000, concurrency=1, duration=0.1), recorder)
    assert 1 <= len(probe.seen) < 50
    assert recorder.elapsed() < 1.0


async def test_fixed_rate_spaces_starts_and_caps_in_flight() -> None:
    probe, recorder = Probe(delay=0.2), Recorder()
    await drive(probe, Plan(count=6, concurrency=2, rate=50.0), recorder)
    assert recorder.ok == 6
    assert probe.peak == 2
    # Only two slots for 0.2 s units: the later starts run behind the 50/s schedule.
    assert recorder.counters["late_starts"] >= 2
    assert len(recorder.steps["schedule_lag"]) == 6


async def test_fixed_rate_takes_count_over_rate_seconds() -> None:
    recorder = Recorder()
    await drive(Probe(delay=0.0), Plan(count=5, concurrency=5, rate=25.0), recorder)
    # The fifth unit is due at 4/25 = 0.16 s.
    assert 0.15 <= recorder.elapsed() < 1.0
