"""Wake-ups for requests of this process that wait for a resource to change.

A poll of an authorization whose validation runs here is held until the
outcome is committed: the code that commits it calls :meth:`Signals.notify`
with the resource's id, and every waiter on that id wakes at once. A change
committed by another process or node sends no signal here, so a waiter never
trusts a signal alone: it re-reads the store when woken and at least every
few hundred milliseconds (see :mod:`gateway.core.polls`).
"""

from __future__ import annotations

import asyncio


class Signals:
    """Per-resource wake-ups, in one process: ``wait(id)`` ends at ``notify(id)``."""

    def __init__(self) -> None:
        # id → the futures of the requests waiting on it; gone when nobody waits
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}

    def notify(self, *resource_ids: str) -> None:
        """Wake every request waiting on one of ``resource_ids`` (committed changes only)."""
        for resource_id in resource_ids:
            for waiter in self._waiters.pop(resource_id, ()):
                if not waiter.done():
                    waiter.set_result(None)

    async def wait(self, resource_id: str, timeout: float) -> bool:
        """Wait for a notify of ``resource_id``, at most ``timeout`` s; True when notified."""
        waiter = asyncio.get_running_loop().create_future()
        waiting = self._waiters.setdefault(resource_id, set())
        waiting.add(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            waiting.discard(waiter)
            if not waiting and self._waiters.get(resource_id) is waiting:
                del self._waiters[resource_id]

    @property
    def waiting(self) -> int:
        """Resources some request waits on (for tests and metrics)."""
        return len(self._waiters)
