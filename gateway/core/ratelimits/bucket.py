"""The token bucket, stored as one number: the time at which it is full again.

A bucket of ``capacity`` tokens refills evenly over ``period`` seconds, one
token every ``interval = period / capacity``. Instead of a token count and a
last-refill time, it is kept as ``full_at`` (the "theoretical arrival time" of
the generic cell rate algorithm): a bucket holds ``(period - (full_at - now)) /
interval`` tokens. Taking ``cost`` tokens moves ``full_at`` to ``max(full_at,
now) + cost · interval``, which is allowed while that stays within ``period``
of now. One number per bucket makes the check-and-take a single conditional
UPSERT in SQL, so several processes or nodes share a bucket without locks.

Nothing here imports the gateway: the store uses it as well as the core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Floating-point slack when comparing times: a spend that is due to the microsecond passes.
SLACK_SECONDS = 1e-6


@dataclass(frozen=True)
class Bucket:
    """``capacity`` tokens, refilled evenly over ``period`` seconds."""

    capacity: int
    period: float

    @property
    def interval(self) -> float:
        """Seconds to refill one token."""
        return self.period / self.capacity

    def spent(self, full_at: float, now: float, cost: int) -> float:
        """``full_at`` after taking ``cost`` tokens at ``now`` (epoch seconds)."""
        return max(full_at, now) + cost * self.interval

    def wait(self, full_at: float, now: float, cost: int) -> float:
        """Seconds until ``cost`` tokens are there (0.0: they are there now)."""
        late = self.spent(full_at, now, cost) - now - self.period
        return late if late > SLACK_SECONDS else 0.0


def retry_after(wait: float) -> int:
    """A ``Retry-After`` value for a wait: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait - SLACK_SECONDS))


class LocalBuckets:
    """Buckets in this process's memory, for the limits that guard one node.

    No store round trip: these are checked on every request. The number of
    buckets is bounded; past ``size`` the full ones are dropped (a missing
    bucket is a full one), and if none is full, the oldest.
    """

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._full_at: dict[str, float] = {}

    def spend(self, key: str, bucket: Bucket, cost: int, now: float) -> float:
        """Take ``cost`` tokens: 0.0 when taken, else the seconds to wait (nothing taken)."""
        full_at = self._full_at.get(key, now)
        wait = bucket.wait(full_at, now, cost)
        if wait:
            return wait
        self._full_at[key] = bucket.spent(full_at, now, cost)
        if len(self._full_at) > self.size:
            self._trim(now)
        return 0.0

    def __len__(self) -> int:
        return len(self._full_at)

    def _trim(self, now: float) -> None:
        self._full_at = {k: v for k, v in self._full_at.items() if v > now}
        while len(self._full_at) > self.size:
            del self._full_at[next(iter(self._full_at))]
