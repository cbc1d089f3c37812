"""Prometheus metrics at ``/metrics``: requests by front end and status, latency, work in flight.

Counting happens where aiohttp already calls us once per request (the access
logger), so metrics add no middleware to the hot path. A request adds to plain
integers (:class:`_Tally`); they are folded into the prometheus_client counter
and histogram when /metrics is read, so a scrape shows every request answered
before it, for the cost of a few additions per request. Work in flight
(validations, CA jobs) is read from the core when Prometheus scrapes.

Under ``serve --workers N`` a scrape reaches whichever worker the kernel hands
the connection to, so every worker must answer with the sum over all of them:
each writes its values to files of its own in a shared directory
(prometheus_client's multiprocess mode) and a scrape merges every file. The
counts of a worker that died stay in the sum, so counters never go back; its
work-in-flight gauges are dropped by the supervisor.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from gateway import connections, keys
from gateway.metrics_pki import PkiMetrics
from gateway.model.store import DatabaseStats

log = logging.getLogger("gateway.metrics")

# Paths are grouped by front end: per-URL labels would grow without bound
# (every order, authorization and certificate has its own URL).
_FRONT_ENDS = (("/acme/", "acme"), ("/.well-known/est", "est"), ("/pkix/", "pkix"),
               ("/admin/", "admin"), ("/scep", "scep"))
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# How often a worker writes its work-in-flight gauges to the shared files.
SHARED_GAUGE_PERIOD_SECONDS = 1.0
_SHARED_FILES = "*.db"


def front_end(path: str) -> str:
    """The front end a request path belongs to."""
    for prefix, name in _FRONT_ENDS:
        if path.startswith(prefix):
            return name
    return "other"


class _InFlight(Collector):
    """Gauges read from the running core at scrape time."""

    def __init__(self, read: Callable[[], dict[str, int]]) -> None:
        self.read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        values = self.read()
        for name, value in values.items():
            yield GaugeMetricFamily(f"acme_gateway_{name}", f"{name.replace('_', ' ')}",
                                    value=value)


class _CAStates(Collector):
    """Per-CA gauges read from the core's health state at scrape time."""

    def __init__(self, read: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self.read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        states = self.read()
        up = GaugeMetricFamily("acme_gateway_ca_up", "1 while the CA answers", labels=["ca"])
        waiting = GaugeMetricFamily("acme_gateway_ca_jobs_waiting",
                                    "jobs waiting on the CA (pending or retrying)", labels=["ca"])
        failures = GaugeMetricFamily("acme_gateway_ca_consecutive_failures",
                                     "failed calls and probes in a row", labels=["ca"])
        for name, state in states.items():
            up.add_metric([name], 1.0 if state["state"] == "up" else 0.0)
            waiting.add_metric([name], float(state["jobs_waiting"]))
            failures.add_metric([name], float(state["consecutive_failures"]))
        yield from (up, waiting, failures)


# The database figures: (metric, help) of its totals and of its per-table values.
_DB_TOTALS = (("database_bytes", "Size of the database on disk"),
              ("database_free_bytes", "Part of the database free for reuse"))
_DB_TABLES = (("database_rows", "Rows per table"),
              ("database_table_bytes", "Bytes per table, its indexes included"))


def database_figures(stats: DatabaseStats) -> Iterable[tuple[str, str, str, float]]:
    """(metric, help, table or "", value) of the database statistics the pruner last read."""
    yield (*_DB_TOTALS[0], "", stats.size_bytes)
    yield (*_DB_TOTALS[1], "", stats.free_bytes)
    for table, figures in stats.tables.items():
        yield (*_DB_TABLES[0], table, figures.rows)
        yield (*_DB_TABLES[1], table, figures.bytes)


class _Database(Collector):
    """The database statistics as gauges, read at scrape time (absent until first read)."""

    def __init__(self, read: Callable[[], DatabaseStats | None]) -> None:
        self.read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        stats = self.read()
        if stats is None:
            return
        families: dict[str, GaugeMetricFamily] = {}
        for name, doc, table, value in database_figures(stats):
            family = families.get(name)
            if family is None:
                family = families[name] = GaugeMetricFamily(
                    f"acme_gateway_{name}", doc, labels=["table"] if table else None)
            family.add_metric([table] if table else [], value)
        yield from families.values()


class _Tally:
    """Requests of one (front end, status) not yet folded into the Prometheus metrics.

    prometheus_client's ``inc``/``observe`` cost about nine Python calls and three
    locks a request; the tally costs a bisect and three additions, and is folded
    once per scrape with the same result.
    """

    __slots__ = ("count", "seconds", "buckets")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * (len(_BUCKETS) + 1)  # the last is +Inf

    def add(self, seconds: float) -> None:
        """One request answered in ``seconds``."""
        self.count += 1
        self.seconds += seconds
        # The first bound at or above the time: the bucket Histogram.observe picks.
        self.buckets[bisect.bisect_left(_BUCKETS, seconds)] += 1

    def fold_into(self, requests: Any, latency: Any) -> None:
        """Add the tally to the labelled counter and histogram children, and start over."""
        if not self.count:
            return
        requests.inc(self.count)
        # Histogram children keep one value per bucket and the sum (no public bulk add).
        latency._sum.inc(self.seconds)
        for value, count in zip(latency._buckets, self.buckets, strict=True):
            if count:
                value.inc(count)
        self.count, self.seconds = 0, 0.0
        self.buckets = [0] * (len(_BUCKETS) + 1)


class Metrics:
    """The gateway's metrics, in a registry of its own (one per application).

    With ``shared_dir`` (one of several workers) the values live in that
    directory, beside the other workers' (see the module docstring).
    """

    def __init__(self, in_flight: Callable[[], dict[str, int]],
                 shared_dir: Path | None = None,
                 ca_states: Callable[[], dict[str, dict[str, Any]]] | None = None,
                 database: Callable[[], DatabaseStats | None] = lambda: None) -> None:
        self.shared_dir = shared_dir
        self._read_in_flight = in_flight
        self._read_database = database
        self._gauges: dict[str, Gauge] = {}
        self.registry = CollectorRegistry()
        # Shared: the metrics below are not registered; a scrape merges the files.
        own = None if shared_dir is not None else self.registry
        if shared_dir is not None:
            _write_values_to(shared_dir)
            MultiProcessCollector(self.registry, path=str(shared_dir))  # type: ignore[no-untyped-call]
        self.requests = Counter("acme_gateway_http_requests", "HTTP requests answered",
                                ["frontend", "status"], registry=own)
        self.latency = Histogram("acme_gateway_http_request_duration_seconds",
                                 "Time to answer an HTTP request", ["frontend"],
                                 buckets=_BUCKETS, registry=own)
        self.connections_closed = Counter(
            "acme_gateway_connections_closed",
            "Connections the gateway closed (timeouts, unparsable requests) or refused (budgets)",
            ["reason"], registry=own)
        for reason in connections.REASONS:  # every reason shows, at 0 until it happens
            self.connections_closed.labels(reason)
        self.pki = PkiMetrics(own, tally=shared_dir is None)
        if shared_dir is None:
            self.registry.register(_InFlight(in_flight))
            self.registry.register(_Database(database))
        if ca_states is not None:  # this process's view of its CAs, also with workers
            self.registry.register(_CAStates(ca_states))
        # Labelled children by (front end, status), and requests not yet folded into them.
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._tallies: dict[tuple[str, int], _Tally] = {}
        # Workers answer scrapes for each other from the shared files, which a tally
        # held here would leave behind: with workers every request is written at once.
        self._tally = shared_dir is None

    def observe(self, path: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        key = (front_end(path), status)
        if self._tally:
            tally = self._tallies.get(key)
            if tally is None:
                self._labelled(key)  # the series shows, created now, as without a tally
                tally = self._tallies[key] = _Tally()
            tally.add(seconds)
            return
        requests, latency = self._labelled(key)
        requests.inc()
        latency.observe(seconds)

    def _labelled(self, key: tuple[str, int]) -> tuple[Any, Any]:
        # labels() re-checks and joins its arguments on every call: made once per key.
        children = self._children.get(key)
        if children is None:
            name, status = key
            children = self._children[key] = (
                self.requests.labels(name, str(status)), self.latency.labels(name))
        return children

    def fold(self) -> None:
        """Fold the requests counted since the last scrape into the Prometheus metrics."""
        for key, tally in self._tallies.items():
            tally.fold_into(*self._labelled(key))
        self.pki.fold()

    def connection_closed(self, reason: str) -> None:
        """Count one connection the gateway closed or refused, and why."""
        self.connections_closed.labels(reason).inc()

    def publish_in_flight(self) -> None:
        """Write this worker's work in flight to the shared files (shared mode only)."""
        if self.shared_dir is None:
            return
        for name, value in self._read_in_flight().items():
            gauge = self._gauges.get(name)
            if gauge is None:
                # livesum: the sum over live workers; a dead worker's files are removed.
                gauge = self._gauges[name] = Gauge(
                    f"acme_gateway_{name}", name.replace("_", " "), registry=None,
                    multiprocess_mode="livesum")
            gauge.set(value)
        self._publish_database()

    def _publish_database(self) -> None:
        """The primary's database statistics (the other workers have none to write)."""
        stats = self._read_database()
        if stats is None:
            return
        for name, doc, table, value in database_figures(stats):
            gauge = self._gauges.get(name)
            if gauge is None:
                # livemax: only the primary reads the statistics; the others add nothing.
                gauge = self._gauges[name] = Gauge(
                    f"acme_gateway_{name}", doc, ["table"] if table else [], registry=None,
                    multiprocess_mode="livemax")
            (gauge.labels(table) if table else gauge).set(value)

    async def publishing(self, _app: web.Application) -> AsyncIterator[None]:
        """A cleanup context: publish work in flight every second while serving."""
        if self.shared_dir is None:
            yield
            return

        async def loop() -> None:
            while True:
                try:
                    self.publish_in_flight()
                except Exception:  # a gauge left stale must not stop the next updates
                    log.exception("publishing the work-in-flight gauges failed")
                await asyncio.sleep(SHARED_GAUGE_PERIOD_SECONDS)

        task = asyncio.create_task(loop(), name="metrics-publisher")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _write_values_to(directory: Path) -> None:
    """Make every metric created from now on in this process keep its value in ``directory``.

    prometheus_client chooses where values live once per process (its
    ``values.ValueClass``, read when a metric is created) and names the
    directory in an environment variable; a worker serves one application, so
    the process-wide switch is this worker's choice alone.
    """
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def prepare_shared_dir(directory: Path) -> None:
    """Create the workers' metrics directory, empty: counts of an earlier run start over."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in directory.glob(_SHARED_FILES):
        stale.unlink()


def forget_worker(directory: Path, pid: int) -> None:
    """Drop the work-in-flight gauges of a worker that died (its counters stay counted)."""
    mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


async def metrics_handler(request: web.Request) -> web.Response:
    """GET /metrics in the Prometheus text format."""
    metrics = request.app[keys.METRICS]
    metrics.fold()
    metrics.publish_in_flight()  # this worker's own figures as of now
    await _read_store_figures(request.app)
    body = generate_latest(metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _read_store_figures(app: web.Application) -> None:
    """Refresh the figures read from the store; a failed read leaves the last ones."""
    core = app.get(keys.CORE)
    if core is None:
        return
    try:
        expiring = await core.inventory.expiring_soon()
        jobs = await core.inventory.jobs_waiting()
    except Exception:  # the scrape still answers with every other metric
        log.exception("reading the store figures for /metrics failed")
        return
    app[keys.METRICS].pki.set_store_figures(expiring, jobs)
