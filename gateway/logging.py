"""Structured logs: one JSON line per request and per event, never a secret."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Any

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, Request, StreamResponse

from gateway.keys import METRICS

if TYPE_CHECKING:
    from gateway.metrics import Metrics


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """The JSON line."""
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"), default=str)


def setup(level: str) -> None:
    """Send every gateway log to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.INFO)


class AccessLogger(AbstractAccessLogger):
    """One line per request: method, path (no query: it may carry tokens), status, time.

    It also feeds the request metrics, so it stays enabled when the access log
    itself is switched off (the logger's level then drops the line).
    """

    _metrics: Metrics | None = None

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        """Count the request and write the access line."""
        # One logger serves one connection of one application: look the metrics up
        # once (request.config_dict builds a new chain of apps on every access).
        metrics = self._metrics
        if metrics is None and isinstance(request, Request):
            metrics = self._metrics = _metrics_of(request)
        if metrics is not None:
            metrics.observe(request.path, response.status, time)
        if not self.logger.isEnabledFor(logging.INFO):
            return
        self.logger.info("request", extra={"fields": {
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "ms": round(time * 1000, 2),
            "remote": request.remote,
            "bytes": response.body_length,
        }})

    @property
    def enabled(self) -> bool:
        """Always: the metrics need every request."""
        return True

    @classmethod
    def counting_into(cls, metrics: Metrics) -> type[AccessLogger]:
        """An access logger class that counts into ``metrics``, also for requests that never
        reached a route (aiohttp's own 400s for bytes that are not HTTP)."""
        return type("AccessLogger", (cls,), {"_metrics": metrics})


def _metrics_of(request: Request) -> Metrics | None:
    """The metrics of the request's application; None for a request aiohttp refused before
    routing (it has no application to ask)."""
    try:
        return request.config_dict.get(METRICS)
    except AssertionError:
        return None
