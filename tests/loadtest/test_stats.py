"""Percentiles, timelines and histograms of a run."""

from __future__ import annotations

import pytest

from loadtest.stats import Recorder, histogram, percentile, summarize


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([], 0.5, 0.0),
        ([7.0], 0.99, 7.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),
        ([float(i) for i in range(1, 101)], 0.95, 95.0),
        ([float(i) for i in range(1, 101)], 0.99, 99.0),
        ([float(i) for i in range(1, 101)], 1.0, 100.0),
    ],
)
def test_nearest_rank_percentile(values: list[float], fraction: float, expected: float) -> None:
    assert percentile(values, fraction) == expected


def test_summary_of_unsorted_values() -> None:
    assert summarize([3.0, 1.0, 2.0]) == {
        "count": 3,
        "mean": 2.0,
        "p50": 2.0,
        "p95": 3.0,
        "p99": 3.0,
        "max": 3.0,
    }


def test_timed_records_only_successful_steps() -> None:
    clock = FakeClock()
    recorder = Recorder(clock=clock)
    recorder.start()
    with recorder.timed("newOrder"):
        clock.now += 0.25
    with pytest.raises(RuntimeError), recorder.timed("finalize"):
        raise RuntimeError("boom")
    assert recorder.steps == {"newOrder": [250.0]}


def test_timeline_buckets_successes_and_failures_per_second() -> None:
    clock = FakeClock()
    recorder = Recorder(clock=clock)
    recorder.start()
    clock.now += 0.5
    recorder.succeeded(500.0)
    clock.now += 1.0
    recorder.failed("timeout")
    recorder.succeeded(1500.0)
    clock.now += 0.7
    recorder.stop()
    assert recorder.timeline() == [
        {"t": 0.0, "ok": 1, "errors": 0},
        {"t": 1.0, "ok": 1, "errors": 1},
        {"t": 2.0, "ok": 0, "errors": 0},
    ]
    summary = recorder.summary()
    assert summary["succeeded"] == 2 and summary["failed"] == 1
    assert summary["errors"] == {"timeout": 1}
    assert summary["throughput_per_s"] == pytest.approx(2 / 2.2, abs=1e-3)


def test_histogram_puts_outliers_in_the_last_bin() -> None:
    values = [float(i) for i in range(1, 100)] + [10_000.0]
    result = histogram(values, bins=10)
    assert len(result["edges"]) == len(result["counts"]) == 10
    assert sum(result["counts"]) == 100
    assert result["counts"][-1] >= 1 and result["edges"][-1] < 10_000.0


def test_histogram_starts_at_the_minimum() -> None:
    result = histogram([1000.0, 1010.0, 1020.0, 1030.0], bins=4)
    assert result["edges"][0] == 1000.0
    assert result["counts"] == [1, 1, 1, 1]


def test_histogram_of_identical_values_has_one_full_bin() -> None:
    assert histogram([5.0, 5.0], bins=3)["counts"] == [2, 0, 0]


def test_histogram_of_nothing_is_empty() -> None:
    assert histogram([]) == {"edges": [], "counts": []}
