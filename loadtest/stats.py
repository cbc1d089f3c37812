"""What a run measured: latencies per step, completions over time, errors by kind, counters.

Everything is kept in memory (a float per step per order); a run of 100 000
orders costs a few megabytes, which is cheaper than streaming aggregates and
lets the report draw an exact histogram.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

TOTAL = "total"


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(values: list[float]) -> dict[str, float]:
    """count, mean, p50, p95, p99 and max of ``values`` (milliseconds)."""
    ordered = sorted(values)
    count = len(ordered)
    return {
        "count": count,
        "mean": round(sum(ordered) / count, 3) if count else 0.0,
        "p50": round(percentile(ordered, 0.50), 3),
        "p95": round(percentile(ordered, 0.95), 3),
        "p99": round(percentile(ordered, 0.99), 3),
        "max": round(ordered[-1], 3) if count else 0.0,
    }


def histogram(values: list[float], bins: int = 40) -> dict[str, list[float] | list[int]]:
    """Bin lower edges (ms) and counts from the minimum to p99; the last bin also holds the tail.

    Starting at the minimum rather than 0 keeps the bins where the samples are
    (a poll-bound flow has nothing below its first poll delay).
    """
    if not values:
        return {"edges": [], "counts": []}
    ordered = sorted(values)
    low = ordered[0]
    width = max(percentile(ordered, 0.99) - low, 1e-3) / (bins - 1)
    counts = [0] * bins
    for value in ordered:
        counts[min(bins - 1, int((value - low) / width))] += 1
    return {"edges": [round(low + i * width, 2) for i in range(bins)], "counts": counts}


@dataclass
class Recorder:
    """Collects the measurements of one run; shared by all concurrent flows (one event loop)."""

    clock: Any = time.perf_counter
    started: float = 0.0
    finished: float = 0.0
    steps: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    # One example message per error kind: "http-403" alone rarely says what to fix.
    error_samples: dict[str, str] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)
    # (seconds since start, True for success / False for failure) per finished unit of work.
    completions: list[tuple[float, bool]] = field(default_factory=list)
    in_flight: int = 0
    started_units: int = 0

    def start(self) -> None:
        """Mark the start of the measured phase."""
        self.started = self.clock()

    def stop(self) -> None:
        """Mark the end of the measured phase."""
        self.finished = self.clock()

    def elapsed(self) -> float:
        """Seconds since start (up to stop once stopped)."""
        return (self.finished or self.clock()) - self.started

    def add(self, step: str, millis: float) -> None:
        """Record one latency sample of ``step``."""
        self.steps.setdefault(step, []).append(millis)

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        """Time the body as ``step``; failed bodies are counted as errors, not latencies."""
        begin = self.clock()
        yield
        self.add(step, (self.clock() - begin) * 1000.0)

    def succeeded(self, total_ms: float) -> None:
        """One unit of work (an order, an enrollment) finished well."""
        self.add(TOTAL, total_ms)
        self.completions.append((self.clock() - self.started, True))

    def failed(self, kind: str, detail: str = "") -> None:
        """One unit of work failed with an error of ``kind``; the first detail per kind is kept."""
        self.errors[kind] += 1
        if detail and kind not in self.error_samples:
            self.error_samples[kind] = detail[:300]
        self.completions.append((self.clock() - self.started, False))

    @property
    def ok(self) -> int:
        """Number of successful units."""
        return len(self.steps.get(TOTAL, ()))

    def timeline(self, bucket_seconds: float = 1.0) -> list[dict[str, float]]:
        """Successes and failures per time bucket, for throughput-over-time charts."""
        buckets = max(1, math.ceil(self.elapsed() / bucket_seconds))
        ok, bad = [0] * buckets, [0] * buckets
        for at, success in self.completions:
            index = min(buckets - 1, int(at / bucket_seconds))
            (ok if success else bad)[index] += 1
        return [
            {"t": round(i * bucket_seconds, 3), "ok": ok[i], "errors": bad[i]}
            for i in range(buckets)
        ]

    def summary(self) -> dict[str, Any]:
        """The machine-readable result (the core of ``--json``)."""
        elapsed = self.elapsed()
        return {
            "elapsed_s": round(elapsed, 3),
            "started": self.started_units,
            "succeeded": self.ok,
            "failed": sum(self.errors.values()),
            "throughput_per_s": round(self.ok / elapsed, 3) if elapsed > 0 else 0.0,
            "latency_ms": {step: summarize(values) for step, values in self.steps.items()},
            "errors": dict(self.errors.most_common()),
            "error_samples": dict(sorted(self.error_samples.items())),
            "counters": dict(sorted(self.counters.items())),
            "timeline": self.timeline(),
            "histogram_ms": histogram(self.steps.get(TOTAL, [])),
        }
