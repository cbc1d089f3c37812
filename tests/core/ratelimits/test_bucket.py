"""The token bucket's arithmetic, Retry-After rounding and the in-memory buckets."""

from __future__ import annotations

import pytest

from gateway.core.ratelimits.bucket import Bucket, LocalBuckets, retry_after

FIVE_PER_HOUR = Bucket(5, 3600.0)  # a token every 720 s


@pytest.mark.parametrize("full_at,now,cost,wait", [
    (0.0, 1000.0, 1, 0.0),            # never spent: full
    (1000.0 + 2880, 1000.0, 1, 0.0),  # four spent: room for a fifth
    (1000.0 + 3600, 1000.0, 1, 720.0),  # empty: one token in 720 s
    (1000.0 + 3600, 1000.0, 2, 1440.0),
    (1000.0 + 3600, 1500.0, 1, 220.0),  # 500 s later
    (1000.0 + 4000, 1000.0, 1, 1120.0),  # overdrawn by counts of what happened
])
def test_wait(full_at: float, now: float, cost: int, wait: float) -> None:
    assert FIVE_PER_HOUR.wait(full_at, now, cost) == pytest.approx(wait)


def test_spent_moves_full_at_by_one_interval_per_token() -> None:
    assert FIVE_PER_HOUR.spent(0.0, 1000.0, 2) == 1000.0 + 1440
    assert FIVE_PER_HOUR.spent(5000.0, 1000.0, 1) == 5720.0


@pytest.mark.parametrize("wait,seconds", [(0.2, 1), (1.0, 1), (1.0000001, 1), (1.01, 2),
                                          (719.5, 720)])
def test_retry_after_rounds_up_to_whole_seconds(wait: float, seconds: int) -> None:
    assert retry_after(wait) == seconds


def test_local_buckets_refuse_without_taking() -> None:
    local, bucket = LocalBuckets(), Bucket(2, 10.0)
    assert [local.spend("ip", bucket, 1, 100.0) for _ in range(3)] == [0.0, 0.0, 5.0]
    assert local.spend("ip", bucket, 1, 104.0) == pytest.approx(1.0)
    assert local.spend("ip", bucket, 1, 105.0) == 0.0
    assert local.spend("other", bucket, 1, 105.0) == 0.0


def test_local_buckets_stay_bounded_dropping_full_ones_first() -> None:
    local, bucket = LocalBuckets(size=3), Bucket(1, 10.0)
    local.spend("old", bucket, 1, 0.0)      # full again at 10
    for key in ("a", "b", "c"):
        local.spend(key, bucket, 1, 20.0)
    assert len(local) == 3
    assert local.spend("a", bucket, 1, 20.0) > 0  # the busy ones were kept
    for key in ("d", "e"):
        local.spend(key, bucket, 1, 20.0)
    assert len(local) == 3
