"""Whether the database answers, for ``/readyz``.

A readiness probe is unauthenticated and may be called in a tight loop (by a
load balancer, or by anyone who can reach the port), so one check serves every
caller for ``interval`` seconds, callers arriving while one runs wait for that
one, and a database that hangs instead of refusing counts as down after
``timeout`` seconds: a flood of probes costs the database at most one trivial
query per interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from gateway.model.store import Store, StoreUnavailable

log = logging.getLogger(__name__)


class StoreProbe:
    """The database's state as last checked: ``{"state": "up"}`` or down with why."""

    def __init__(self, store: Store, interval: float = 1.0, timeout: float = 2.0) -> None:
        self._store = store
        self._interval = interval
        self._timeout = timeout
        self._checked_at = float("-inf")
        self._last: dict[str, Any] = {"state": "up"}
        self._running: asyncio.Task[dict[str, Any]] | None = None

    async def state(self) -> dict[str, Any]:
        """The state, checked again if the last check is older than the interval."""
        if time.monotonic() - self._checked_at < self._interval:
            return self._last
        if self._running is None:
            self._running = asyncio.ensure_future(self._check())
        # Shielded: a probe whose client hangs up must not cancel the others' answer.
        return await asyncio.shield(self._running)

    async def _check(self) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self._timeout):
                await self._store.ping()
            self._last = {"state": "up"}
        except StoreUnavailable as exc:
            # The cause (host, driver message) is for the log, not for an
            # unauthenticated endpoint.
            self._down("not reachable", exc.cause)
        except TimeoutError:
            self._down(f"no answer within {self._timeout:g} s", "")
        except Exception as exc:  # a probe answers 503, never a 500 with a traceback
            self._down("the check failed", repr(exc))
        finally:
            self._checked_at = time.monotonic()
            self._running = None
        return self._last

    def _down(self, reason: str, cause: str) -> None:
        if self._last["state"] == "up":  # logged once per outage, not once per probe
            log.warning("readiness: the database is down (%s) %s", reason, cause)
        self._last = {"state": "down", "reason": reason}
