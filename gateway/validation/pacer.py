"""Admission pacing: at most N attempts start per turn of the event loop.

The validator shares its event loop with the ACME and EST handlers. A thousand
validations released at once would each run their first steps (DNS queries,
connection set-up) in the same loop turn, and a directory request arriving then
waits for all of them. Starting at most ``per_turn`` attempts per turn bounds
that stall to a few milliseconds, while an idle loop turns quickly and so still
admits thousands per second.
"""

from __future__ import annotations

import asyncio
from collections import deque

from gateway.validation.slots import wait_in_line


class Pacer:
    """First come, first served: ``await admit()`` returns once this turn has room."""

    def __init__(self, per_turn: int) -> None:
        if per_turn < 1:
            raise ValueError("per_turn must be at least 1")
        self._per_turn = per_turn
        self._used = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._reset_pending = False

    @property
    def waiting(self) -> int:
        """How many callers wait for a turn."""
        return len(self._waiters)

    def try_admit(self) -> bool:
        """Admit the caller now if this turn has room; False means: ``await admit()``."""
        self._schedule_reset()
        if self._used < self._per_turn and not self._waiters:
            self._used += 1
            return True
        return False

    async def admit(self) -> None:
        """Wait until this caller may start work in the current loop turn."""
        if not self.try_admit():
            await wait_in_line(self._waiters, self._give_back)

    def _give_back(self) -> None:
        self._used -= 1  # admitted, then cancelled: the turn has that room again

    def _schedule_reset(self) -> None:
        if not self._reset_pending:
            self._reset_pending = True
            asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._reset_pending = False
        self._used = 0
        while self._waiters and self._used < self._per_turn:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._used += 1
        if self._waiters:
            self._schedule_reset()
