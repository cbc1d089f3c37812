"""The two budgets of a CA job: waiting for a decision, and riding out failures.

* **Waiting** (``extra["waiting_since"]``): once the CA has taken a request
  (it answered "pending" and gave a reference), the job polls at the CA's own
  interval, or with ``poll_*`` backoff when the CA names none, until the
  profile's ``max_wait_hours`` have passed since the first "pending". The
  clock is persisted, so a restart neither resets nor loses it.
* **Errors** (``Job.attempts``): consecutive transient failures, retried with
  exponential backoff capped at ``retry_cap_seconds``. Any answer from the CA
  resets the count. A submission the CA never took fails after
  ``max_attempts``; a request the CA holds is never given up on account of
  errors (the CA may still issue it), only when the waiting budget runs out.

An unknown answer is never a refusal: only an explicit :class:`Rejected` ends
an order with the CA's reason.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from connectors.base import Pending
from gateway.config import JobSettings
from gateway.model.records import Job

WAITING_SINCE = "waiting_since"
POLLS = "polls"
# Set when a submission ended without an answer that says whether the CA took it.
IN_DOUBT = "in_doubt"


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff: base, 2·base, 4·base, ... capped."""
    return float(min(cap, base * 2.0 ** max(0, attempt - 1)))


def waiting_since(job: Job) -> datetime | None:
    """When the CA first answered "pending" for this job, if it has."""
    since = job.extra.get(WAITING_SINCE)
    return datetime.fromisoformat(since) if isinstance(since, str) else None


def wait_expired(job: Job, now: datetime, max_wait: timedelta) -> bool:
    """True when the job has waited for the CA's decision longer than ``max_wait``."""
    since = waiting_since(job)
    return since is not None and now - since > max_wait


def after_pending(job: Job, result: Pending, now: datetime, jobs: JobSettings) -> Job:
    """The job after the CA said "pending": polled at the CA's pace, error count reset."""
    polls = int(job.extra.get(POLLS, 0)) + 1
    delay = result.retry_after or backoff(polls, jobs.poll_base_seconds, jobs.poll_cap_seconds)
    since = job.extra.get(WAITING_SINCE) or now.isoformat()
    extra = {k: v for k, v in job.extra.items() if k != IN_DOUBT}
    return replace(job, state="waiting", ca_ref=result.ref, attempts=0,
                   run_at=now + timedelta(seconds=delay), last_error=result.message,
                   extra={**extra, POLLS: polls, WAITING_SINCE: since})


def after_failure(job: Job, error: str, retryable: bool, now: datetime,
                  jobs: JobSettings, hint: str | None = None) -> Job | None:
    """The job rescheduled after a failure, or None when its error budget is spent.

    ``hint`` marks a submission whose fate is unknown (see :data:`IN_DOUBT`).
    """
    attempts = job.attempts + 1
    held_by_ca = bool(job.ca_ref)
    if not held_by_ca and (not retryable or attempts >= jobs.max_attempts):
        return None
    delay = backoff(attempts, jobs.retry_base_seconds, jobs.retry_cap_seconds)
    extra = dict(job.extra)
    if hint is not None:
        extra[IN_DOUBT] = hint
    return replace(job, attempts=attempts, last_error=error,
                   run_at=now + timedelta(seconds=delay), extra=extra)


def deferred(job: Job, until: datetime) -> Job:
    """The job put back, untouched otherwise, while its CA's circuit is open."""
    return replace(job, run_at=until)
