"""Connection budgets: how many connections one process holds, overall and per client address.

A client that opens connections and never finishes a request costs the
gateway one file descriptor each. Without a cap, about a thousand of them
(the default descriptor limit) make every new client fail with nothing
logged. The budget refuses a connection over either cap as soon as it is
made (answered ``503`` and closed), counts every refusal and every
connection the watchdog closes, and logs a summary at most once per interval.

Both caps apply per serving process: under ``serve --workers N`` the gateway
as a whole holds up to N times as many.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.metrics import Metrics

log = logging.getLogger("gateway.connections")

# Why a connection was closed by the gateway rather than by its client.
HEADER_TIMEOUT = "header_timeout"
BODY_TIMEOUT = "body_timeout"
IDLE_TIMEOUT = "idle_timeout"
TLS_HANDSHAKE = "tls_handshake"
OVER_TOTAL_CAP = "over_total_cap"
OVER_ADDRESS_CAP = "over_address_cap"
BAD_REQUEST = "bad_request"
REASONS = (HEADER_TIMEOUT, BODY_TIMEOUT, IDLE_TIMEOUT, TLS_HANDSHAKE, OVER_TOTAL_CAP,
           OVER_ADDRESS_CAP, BAD_REQUEST)
# Closures are logged at most this often (with the counts since the last line):
# a flood must not turn into a flood of log lines.
REPORT_INTERVAL_SECONDS = 10.0


@dataclass(frozen=True)
class Caps:
    """The two budgets of one process."""

    total: int
    per_address: int


class ConnectionBudget:
    """Open connections by client address, within :class:`Caps`; counts what it closes."""

    def __init__(self, caps: Caps, metrics: Metrics | None = None) -> None:
        self.caps = caps
        self.metrics = metrics
        self.open = 0
        self.by_address: Counter[str] = Counter()
        self._unreported: Counter[str] = Counter()
        self._last_report = -REPORT_INTERVAL_SECONDS

    def admit(self, address: str) -> str | None:
        """Take a place for a new connection from ``address``, or say why there is none."""
        if self.open >= self.caps.total:
            return self.refuse(OVER_TOTAL_CAP, address)
        if self.by_address[address] >= self.caps.per_address:
            return self.refuse(OVER_ADDRESS_CAP, address)
        self.open += 1
        self.by_address[address] += 1
        return None

    def release(self, address: str) -> None:
        """Give back the place of a connection that :meth:`admit` let in."""
        self.open -= 1
        left = self.by_address[address] - 1
        if left > 0:
            self.by_address[address] = left
        else:
            del self.by_address[address]

    def refuse(self, reason: str, address: str) -> str:
        """Count a refused connection; the reason."""
        self.closed(reason, address)
        return reason

    def closed(self, reason: str, address: str = "") -> None:
        """Count one connection the gateway closed or refused, and why.

        The log gets a summary at most every REPORT_INTERVAL_SECONDS: a warning
        when budgets refused connections (the gateway may be too small or under
        attack), otherwise an info line.
        """
        if self.metrics is not None:
            self.metrics.connection_closed(reason)
        self._unreported[reason] += 1
        now = time.monotonic()
        if now - self._last_report < REPORT_INTERVAL_SECONDS:
            return
        self._last_report = now
        counts = ", ".join(f"{n} {r}" for r, n in sorted(self._unreported.items()))
        refused = any(r in self._unreported for r in (OVER_TOTAL_CAP, OVER_ADDRESS_CAP))
        self._unreported.clear()
        log.log(logging.WARNING if refused else logging.INFO,
                "connections closed by the gateway: %s (the last from %s); open: %d of %d, "
                "per address at most %d", counts, address or "?", self.open, self.caps.total,
                self.caps.per_address)
