"""The token bucket, stored as one number: the time at which it is full again.

A bucket of ``capacity`` tokens refills evenly over ``period`` seconds, one
token every ``interval = period / capacity``. Instead of a token count and a
last-refill time, it is kept as ``full_at`` (the "theoretical arrival time" of
the generic cell rate algorithm): a bucket holds ``(period - (full_at - now)) /
interval`` tokens. Taking ``cost`` tokens moves ``full_at`` to ``max(full_at,
now) + cost · interval``, which is allowed while that stays within ``period``
of now. One number per bucket makes the check-and-take a single conditional
UPSERT in SQL, so several processes or nodes share a bucket without locks.

A value of the model: the store writes it, the core's rate limiter decides with it.
"""

from __future__ import annotations

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
