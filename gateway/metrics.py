"""Prometheus metrics at ``/metrics``: requests by front end and status, latency, work in flight.

Counting happens where aiohttp already calls us once per request (the access
logger), so metrics add no middleware to the hot path. Work in flight
(validations, CA jobs) is read from the core when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from gateway import keys

# Paths are grouped by front end: per-URL labels would grow without bound
# (every order, authorization and certificate has its own URL).
_FRONT_ENDS = (("/acme/", "acme"), ("/.well-known/est", "est"), ("/pkix/", "pkix"),
               ("/admin/", "admin"))
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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


class Metrics:
    """The gateway's metrics, in a registry of its own (one per application)."""

    def __init__(self, in_flight: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("acme_gateway_http_requests", "HTTP requests answered",
                                ["frontend", "status"], registry=self.registry)
        self.latency = Histogram("acme_gateway_http_request_duration_seconds",
                                 "Time to answer an HTTP request", ["frontend"],
                                 buckets=_BUCKETS, registry=self.registry)
        self.registry.register(_InFlight(in_flight))
        # Labelled children by (front end, status): labels() re-checks and joins its
        # arguments on every call, and this runs for every request.
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def observe(self, path: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        name = front_end(path)
        children = self._children.get((name, status))
        if children is None:
            children = self._children[(name, status)] = (
                self.requests.labels(name, str(status)), self.latency.labels(name))
        children[0].inc()
        children[1].observe(seconds)


async def metrics_handler(request: web.Request) -> web.Response:
    """GET /metrics in the Prometheus text format."""
    body = generate_latest(request.app[keys.METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
