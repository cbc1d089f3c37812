"""Rate-limit arithmetic the core adds to the model's :class:`Bucket`.

``retry_after`` turns a wait into a header value; :class:`LocalBuckets` keeps
buckets in one process's memory for the limits that guard a single node.
"""

from __future__ import annotations

import math

from gateway.model.buckets import SLACK_SECONDS, Bucket

__all__ = ["Bucket", "LocalBuckets", "retry_after"]


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
        # Bucket.wait's arithmetic, with the new full_at computed once: this runs
        # on every request.
        after = bucket.spent(self._full_at.get(key, now), now, cost)
        late = after - now - bucket.period
        if late > SLACK_SECONDS:
            return late
        self._full_at[key] = after
        if len(self._full_at) > self.size:
            self._trim(now)
        return 0.0

    def __len__(self) -> int:
        return len(self._full_at)

    def _trim(self, now: float) -> None:
        self._full_at = {k: v for k, v in self._full_at.items() if v > now}
        while len(self._full_at) > self.size:
            del self._full_at[next(iter(self._full_at))]
