"""Counting slots for the validator's concurrency bounds.

``asyncio.Semaphore`` runs several coroutine and method layers per ``async
with`` even when a slot is free, and every attempt takes two (its target's and
a global one). Here a free slot is taken by one method call,
:meth:`Slots.try_take`; only a caller that has to queue awaits :meth:`Slots.take`.
Waiters are served first come, first served, and a slot handed to a waiter that
was cancelled in the meantime passes on to the next.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


async def wait_in_line(waiters: deque[asyncio.Future[None]], give_back: Callable[[], None]) -> None:
    """Wait at the back of ``waiters`` until served (a waiter's result is set).

    A caller cancelled after it was served calls ``give_back``, so that what it
    was handed is not lost.
    """
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiters.append(waiter)
    try:
        await waiter
    except asyncio.CancelledError:
        if waiter.done() and not waiter.cancelled():
            give_back()
        raise


class Slots:
    """``size`` slots; take one before the bounded work and give it back after."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("at least one slot is needed")
        # Invariant: while any slot is free, nobody waits (give() hands slots to waiters first).
        self._free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def free(self) -> int:
        """Slots nobody holds."""
        return self._free

    @property
    def waiting(self) -> int:
        """Callers queued for a slot (cancelled ones included until they reach the front)."""
        return len(self._waiters)

    def try_take(self) -> bool:
        """Take a slot if one is free; False means: ``await take()`` to queue for one."""
        if self._free and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Take a slot, waiting in line for one when none is free."""
        if not self.try_take():
            await wait_in_line(self._waiters, self.give)  # served, then cancelled: pass it on

    def give(self) -> None:
        """Give a slot back: to the first live waiter, or to the free ones."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
