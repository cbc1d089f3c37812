"""Metrics people alert on: issuance, orders, validations, CA calls, expiry, refusals.

Counters follow the core's decisions as the audit trail records them (the
trail calls :meth:`PkiMetrics.observe` for every event it builds), so no core
module imports this one. An event is counted when it is recorded; in the rare
race where its unit of work is then rolled back (another process decided
first), the winner's event is counted too.

CA calls are timed by wrapping each connector the core uses
(:func:`metered_connectors`). Figures read from the store (certificates
expiring soon, jobs waiting) are refreshed when Prometheus scrapes.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from connectors.base import Connector, Issued, IssueRequest, IssueResult, Pending
from gateway import audit
from gateway.model.records import AuditEvent

_CA_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Audit events that end an order, and the final status and reason they mean.
_FINISHED = {audit.ISSUED: ("valid", "issued"), audit.FAILED: ("invalid", "failed"),
             audit.REJECTED: ("invalid", "rejected")}


def protocol_of(actor: str) -> str:
    """The enrollment protocol of a requester as the audit trail names it."""
    scheme = actor.split(":", 1)[0]
    return scheme if scheme in ("acme", "est", "scep") else "other"


class _CallTally:
    """CA calls of one (ca, operation, outcome) not yet folded into the histogram:
    a count per bucket and the sum, as ``Histogram.observe`` keeps them."""

    __slots__ = ("seconds", "buckets")

    def __init__(self) -> None:
        self.seconds = 0.0
        self.buckets = [0] * (len(_CA_BUCKETS) + 1)  # the last is +Inf

    def add(self, seconds: float) -> None:
        """One call that took ``seconds``."""
        self.seconds += seconds
        self.buckets[bisect.bisect_left(_CA_BUCKETS, seconds)] += 1

    def fold_into(self, child: Any) -> None:
        """Add the tally to the histogram child and start over."""
        if not any(self.buckets):
            return
        # Histogram children keep one value per bucket and the sum (no public bulk add).
        child._sum.inc(self.seconds)
        for value, count in zip(child._buckets, self.buckets, strict=True):
            if count:
                value.inc(count)
        self.seconds, self.buckets = 0.0, [0] * (len(_CA_BUCKETS) + 1)


class PkiMetrics:
    """The counters and gauges; ``registry`` None keeps them in the shared files.

    With ``tally`` (one process, not sharing files) counts and CA-call times add
    to plain numbers here, folded into the Prometheus metrics by :meth:`fold` when
    /metrics is read: each ``inc``/``observe`` costs several Python calls and locks.
    """

    def __init__(self, registry: CollectorRegistry | None, tally: bool = False) -> None:
        def counter(name: str, text: str, labels: list[str]) -> Counter:
            return Counter(f"acme_gateway_{name}", text, labels, registry=registry)

        self.issued = counter("certificates_issued", "Certificates issued",
                              ["ca", "profile", "protocol"])
        self.orders = counter("orders_finished", "Requests (ACME orders, EST and SCEP "
                              "enrollments) that reached a final status", ["status", "reason"])
        self.validations = counter("validations", "Challenge validations by type and outcome "
                                   "(ok or the ACME error type)", ["type", "outcome"])
        self.refused = counter("rate_limit_refusals", "Requests refused by a rate limit",
                               ["limit"])
        self.policy_refused = counter("policy_refusals", "Requests refused by a profile rule",
                                      ["profile"])
        self.revoked = counter("certificates_revoked", "Certificates revoked", ["ca"])
        self.ca_calls = Histogram("acme_gateway_ca_call_duration_seconds",
                                  "Time of one CA call (issue or poll), by outcome",
                                  ["ca", "operation", "outcome"], buckets=_CA_BUCKETS,
                                  registry=registry)
        # Read from the store by whichever worker was scraped last; "live": a dead
        # worker's copy is dropped with its other gauges.
        self.expiring = Gauge("acme_gateway_certificates_expiring",
                              "Valid certificates whose notAfter is within the window",
                              ["within_days"], registry=registry,
                              multiprocess_mode="livemostrecent")
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._tally = tally
        self._counts: dict[tuple[int, tuple[str, ...]], int] = {}  # not yet folded
        self._calls: dict[tuple[str, ...], _CallTally] = {}
        self.jobs = Gauge("acme_gateway_jobs_waiting", "CA jobs waiting: for an approver "
                          "(approval), for a pending CA (waiting), to run (queued)",
                          ["state"], registry=registry, multiprocess_mode="livemostrecent")

    def _count(self, counter: Counter, *labels: str) -> None:
        # labels() checks and joins its arguments on every call; events repeat a few
        # label sets, so each child is looked up once.
        key = (id(counter), labels)
        child = self._children.get(key)
        if child is None:  # the series shows from now on, folded or not
            child = self._children[key] = counter.labels(*labels)
        if self._tally:
            self._counts[key] = self._counts.get(key, 0) + 1
            return
        child.inc()

    def observe(self, event: AuditEvent) -> None:
        """Count one recorded decision of the core."""
        kind = event.event
        if kind == audit.ISSUED:
            self._count(self.issued, event.ca, event.profile, protocol_of(event.actor))
        if kind in _FINISHED:
            self._count(self.orders, *_FINISHED[kind])
        elif kind == audit.VALIDATED:
            self._count(self.validations, str(event.extra.get("challenge", "?")), event.result)
        elif kind == audit.RATE_LIMITED:
            self._count(self.refused, str(event.extra.get("limit", "?")))
        elif kind == audit.POLICY_REFUSED:
            self._count(self.policy_refused, event.profile or "?")
        elif kind == audit.REVOKED:
            self._count(self.revoked, event.ca)

    def observe_ca_call(self, ca: str, operation: str, outcome: str, seconds: float) -> None:
        """Time one CA call."""
        labels = (ca, operation, outcome)
        child = self._children.get((id(self.ca_calls), labels))
        if child is None:  # each CA call would otherwise check and join its labels
            child = self._children[(id(self.ca_calls), labels)] = self.ca_calls.labels(*labels)
        if self._tally:
            tally = self._calls.get(labels)
            if tally is None:
                tally = self._calls[labels] = _CallTally()
            tally.add(seconds)
            return
        child.observe(seconds)

    def fold(self) -> None:
        """Fold what was tallied since the last scrape into the Prometheus metrics."""
        counts, self._counts = self._counts, {}
        for key, count in counts.items():
            self._children[key].inc(count)
        for labels, tally in self._calls.items():
            tally.fold_into(self._children[(id(self.ca_calls), labels)])

    def set_store_figures(self, expiring: Mapping[int, int], jobs: Mapping[str, int]) -> None:
        """The figures read from the store at a scrape."""
        for days, count in expiring.items():
            self.expiring.labels(str(days)).set(count)
        for state, count in jobs.items():
            self.jobs.labels(state).set(count)


def _outcome(result: IssueResult) -> str:
    if isinstance(result, Issued):
        return "issued"
    return "pending" if isinstance(result, Pending) else "rejected"


class MeteredConnector:
    """A connector whose issue and poll calls are timed; everything else passes through."""

    def __init__(self, name: str, inner: Connector, metrics: PkiMetrics) -> None:
        self._name = name
        self._inner = inner
        self._metrics = metrics

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)

    async def issue(self, request: IssueRequest) -> IssueResult:
        """The inner connector's issue, timed."""
        return await self._timed("issue", self._inner.issue(request))

    async def poll(self, ref: str) -> IssueResult:
        """The inner connector's poll, timed."""
        return await self._timed("poll", self._inner.poll(ref))

    async def _timed(self, operation: str, call: Any) -> IssueResult:
        start = time.perf_counter()
        outcome = "error"
        try:
            result: IssueResult = await call
            outcome = _outcome(result)
            return result
        finally:
            self._metrics.observe_ca_call(self._name, operation, outcome,
                                          time.perf_counter() - start)


def metered_connectors(connectors: Mapping[str, Connector],
                       metrics: PkiMetrics) -> dict[str, Connector]:
    """Each connector wrapped so that its CA calls are timed."""
    return {name: MeteredConnector(name, c, metrics)
            for name, c in connectors.items()}
