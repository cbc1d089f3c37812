"""The two budgets of a CA job, and the per-CA circuit breaker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import Pending
from gateway.config import JobSettings
from gateway.core import budgets
from gateway.model.records import Job

NOW = datetime(2030, 1, 1, tzinfo=UTC)
JOBS = JobSettings(retry_base_seconds=2, retry_cap_seconds=60, max_attempts=3,
                   poll_base_seconds=5, poll_cap_seconds=40)


@pytest.mark.parametrize(("attempt", "expected"), [(1, 2), (2, 4), (3, 8), (6, 60), (40, 60)])
def test_backoff_doubles_up_to_the_cap(attempt: int, expected: float) -> None:
    assert budgets.backoff(attempt, 2, 60) == expected


def test_pending_resets_the_error_count_and_keeps_the_first_wait() -> None:
    job = Job(id="j", order_id="o", attempts=2, extra={budgets.IN_DOUBT: "41"})
    first = budgets.after_pending(job, Pending("7", retry_after=3600), NOW, JOBS)
    later = budgets.after_pending(first, Pending("7"), NOW + timedelta(hours=5), JOBS)
    assert first.attempts == 0 and first.ca_ref == "7" and budgets.IN_DOUBT not in first.extra
    assert first.run_at == NOW + timedelta(hours=1)  # the CA's own interval
    assert budgets.waiting_since(later) == NOW  # the wait started with the first "pending"
    assert later.run_at == NOW + timedelta(hours=5, seconds=10)  # poll backoff, 2nd poll


@pytest.mark.parametrize(("ca_ref", "attempts", "retryable", "gives_up"), [
    (None, 0, True, False),   # a transient failure of a submission: retry
    (None, 2, True, True),    # the third in a row: max_attempts reached
    (None, 0, False, True),   # a configuration error of a submission: no retry
    ("7", 50, True, False),   # the CA holds the request: errors never end the wait
    ("7", 50, False, False),
])
def test_failures_spend_the_error_budget_of_submissions_only(
        ca_ref: str | None, attempts: int, retryable: bool, gives_up: bool) -> None:
    job = Job(id="j", order_id="o", attempts=attempts, ca_ref=ca_ref)
    again = budgets.after_failure(job, "down", retryable, NOW, JOBS)
    assert (again is None) == gives_up
    if again is not None:
        assert again.attempts == attempts + 1
        assert again.run_at == NOW + timedelta(seconds=budgets.backoff(attempts + 1, 2, 60))


def test_a_submission_in_doubt_keeps_its_hint() -> None:
    again = budgets.after_failure(Job(id="j", order_id="o"), "timeout", True, NOW, JOBS, "41")
    assert again is not None and again.extra[budgets.IN_DOUBT] == "41"


def test_the_wait_expires_only_after_the_profile_maximum() -> None:
    job = budgets.after_pending(Job(id="j", order_id="o"), Pending("7"), NOW, JOBS)
    assert not budgets.wait_expired(job, NOW + timedelta(hours=167), timedelta(hours=168))
    assert budgets.wait_expired(job, NOW + timedelta(hours=169), timedelta(hours=168))
    assert not budgets.wait_expired(Job(id="j", order_id="o"), NOW + timedelta(days=99),
                                    timedelta(hours=1))  # never pending: no wait budget
