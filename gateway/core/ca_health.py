"""What the gateway knows about each CA right now: up or down, since when, and why.

Every CA answer (a certificate, "pending", a refusal) counts as the CA being up;
every transient failure counts against it. After ``breaker_threshold``
consecutive failures the CA's circuit opens: jobs for that CA are put back
until ``breaker_cooldown_seconds`` have passed, without calling the CA and
without spending their own error budget, so a CA in maintenance is not hammered
by every waiting order. The first call after the cooldown is the probe: an
answer closes the circuit, a failure opens it for another cooldown.

The same state feeds ``/readyz``, ``/metrics`` and ``acme-gateway ca status``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.core.clock import Clock


@dataclass
class CAState:
    """One CA as last seen: ``down_since`` is None while it answers."""

    name: str
    down_since: datetime | None = None
    last_error: str = ""
    failures: int = 0  # consecutive transient failures
    open_until: datetime | None = None  # circuit open: no calls before this time
    checked_at: datetime | None = None

    @property
    def up(self) -> bool:
        """True while the CA answers."""
        return self.down_since is None

    def as_dict(self, jobs_waiting: int = 0) -> dict[str, Any]:
        """The state as JSON-ready values, for /readyz and the CLI."""
        return {
            "state": "up" if self.up else "down",
            "down_since": self.down_since.isoformat() if self.down_since else None,
            "last_error": self.last_error,
            "consecutive_failures": self.failures,
            "circuit_open_until": self.open_until.isoformat() if self.open_until else None,
            "jobs_waiting": jobs_waiting,
        }


class CAHealth:
    """Per-CA up/down state and circuit breaker, shared by the job runner and health checks."""

    def __init__(self, names: Iterable[str], clock: Clock, threshold: int = 5,
                 cooldown_seconds: float = 60.0) -> None:
        self.clock = clock
        self.threshold = threshold
        self.cooldown = timedelta(seconds=cooldown_seconds)
        self.states = {name: CAState(name) for name in names}

    def _state(self, ca: str) -> CAState:
        return self.states.setdefault(ca, CAState(ca))

    def answered(self, ca: str) -> None:
        """The CA answered (whatever it said): it is up and its circuit closes."""
        state = self._state(ca)
        state.down_since, state.open_until, state.failures = None, None, 0
        state.checked_at = self.clock.now()

    def failed(self, ca: str, error: str) -> None:
        """A transient failure; enough of them in a row open the circuit."""
        state, now = self._state(ca), self.clock.now()
        state.failures += 1
        state.last_error, state.checked_at = error, now
        if state.down_since is None:
            state.down_since = now
        if self.threshold and state.failures >= self.threshold:
            state.open_until = now + self.cooldown

    def blocked_until(self, ca: str) -> datetime | None:
        """When calls to ``ca`` may resume, while its circuit is open; else None."""
        state = self._state(ca)
        if state.open_until is None or state.open_until <= self.clock.now():
            return None
        return state.open_until

    def is_up(self, ca: str) -> bool:
        """Whether ``ca`` answered last time it was asked."""
        return self._state(ca).up
