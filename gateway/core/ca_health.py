"""What the gateway knows about each CA right now: up or down, since when, and why.

Every CA answer (a certificate, "pending", a refusal) counts as the CA being up;
every transient failure counts against it. After ``breaker_threshold``
consecutive failures the CA's circuit opens: jobs for that CA are put back
until ``breaker_cooldown_seconds`` have passed, without calling the CA and
without spending their own error budget, so a CA in maintenance is not hammered
by every waiting order. The first call after the cooldown is the probe: an
answer closes the circuit, a failure opens it for another cooldown.

Each CA is also probed (``check()``) at start and every
``[jobs] health_probe_seconds`` (:class:`HealthProber`). The same state feeds
``/readyz`` and ``/metrics``; ``acme-gateway ca status`` probes on its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.base import Connector
from gateway.model.clock import Clock

log = logging.getLogger("gateway.health")
# A CA that takes longer than this to answer a health check counts as down.
PROBE_TIMEOUT_SECONDS = 10.0


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

    def report(self, jobs_waiting: Mapping[str, int]) -> dict[str, dict[str, Any]]:
        """Every CA's state with its jobs waiting, for /readyz and the CLI."""
        return {name: state.as_dict(jobs_waiting.get(name, 0))
                for name, state in sorted(self.states.items())}


class HealthProber:
    """Asks every CA ``check()`` at start and every ``period`` seconds, feeding :class:`CAHealth`.

    A probe that fails counts like a failed CA call (it may open the circuit);
    one that succeeds closes it, so jobs resume as soon as the CA is back.
    """

    def __init__(self, connectors: Mapping[str, Connector], health: CAHealth, period: float,
                 timeout: float = PROBE_TIMEOUT_SECONDS) -> None:
        self.connectors = connectors
        self.health = health
        self.period = period
        self.timeout = timeout
        self._task: asyncio.Task[None] | None = None

    async def probe_once(self) -> None:
        """Probe every CA once, concurrently."""
        await asyncio.gather(*(self._probe(n, c) for n, c in self.connectors.items()))

    async def _probe(self, name: str, connector: Connector) -> None:
        try:
            await asyncio.wait_for(connector.check(), self.timeout)
        except Exception as exc:  # any failure is the CA's state, never the prober's end
            self.health.failed(name, str(exc) or type(exc).__name__)
            return
        self.health.answered(name)

    def start(self) -> None:
        """Probe now and then periodically (``period`` 0: only now)."""
        self._task = asyncio.create_task(self._loop(), name="ca-health")

    async def _loop(self) -> None:
        while True:
            try:
                await self.probe_once()
            except Exception:  # keep probing whatever happened
                log.exception("probing the CAs failed")
            if not self.period:
                return
            await asyncio.sleep(self.period)

    async def stop(self) -> None:
        """Stop probing."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
