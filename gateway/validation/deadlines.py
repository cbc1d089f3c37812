"""Deadlines of many validations on one loop timer.

``asyncio.timeout`` arms a loop timer on entry and cancels it on exit; the
validator sets two per validation (the attempt, the DNS try) and nearly every
one ends long before it is due, so arming and cancelling was about a tenth of
a validation's CPU. A :class:`DeadlineQueue` keeps its deadlines in a heap and
arms the loop timer for the earliest one only. A deadline that is cancelled
stays in the heap, marked, until it reaches the top; when the timer fires, the
due deadlines run and the timer is armed again for the next one still live.
Deadlines of one kind (all attempts, all DNS tries) are added in the order they
fall due, so a steady flow re-arms the timer about once per timeout period,
not twice per validation. Use one queue per kind: a deadline earlier than the
armed one re-arms the timer.

:meth:`DeadlineQueue.timeout_at` is ``asyncio.timeout_at`` on such a queue:
the same cancel-then-``TimeoutError`` contract, as a plain ``with`` block.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Callable
from types import TracebackType


class Deadline:
    """One callback due at ``when`` (loop time); :meth:`cancel` before it is due stops it."""

    __slots__ = ("when", "callback")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback: Callable[[], None] | None = callback

    def cancel(self) -> None:
        """Do not run the callback (a no-op once it has run)."""
        self.callback = None


class DeadlineQueue:
    """Runs callbacks at their deadlines with one loop timer (see the module docstring).

    Bound to the running loop at the first :meth:`call_at`.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()  # ties keep their order and never compare Deadlines
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for = math.inf

    def __len__(self) -> int:
        """Deadlines held, live or cancelled but not yet dropped."""
        return len(self._heap)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the timer runs on (the running loop, on first use)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def call_at(self, when: float, callback: Callable[[], None]) -> Deadline:
        """Run ``callback`` at loop time ``when`` unless the returned Deadline is cancelled."""
        heap = self._heap
        while heap and heap[0][2].callback is None:  # the ended ones that reached the top
            heapq.heappop(heap)
        deadline = Deadline(when, callback)
        heapq.heappush(heap, (when, next(self._order), deadline))
        if when < self._armed_for:
            self._arm(when)
        return deadline

    def timeout_at(self, when: float) -> TimeoutScope:
        """A ``with`` block that cancels the current task at ``when`` and raises TimeoutError."""
        return TimeoutScope(self, when)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(when, self._fire)
        self._armed_for = when

    def _fire(self) -> None:
        # Everything due by the armed time counts, even if the loop's clock reads a hair less.
        limit = max(self._armed_for, self.loop.time())
        self._timer = None
        self._armed_for = math.inf
        heap = self._heap
        due: list[Callable[[], None]] = []
        while heap and (heap[0][0] <= limit or heap[0][2].callback is None):
            deadline = heapq.heappop(heap)[2]
            if deadline.callback is not None:
                due.append(deadline.callback)
                deadline.callback = None
        if heap:
            self._arm(heap[0][0])
        for callback in due:
            callback()


class TimeoutScope:
    """``asyncio.timeout_at`` on a :class:`DeadlineQueue`, entered with a plain ``with``.

    At the deadline the task is cancelled; the block then ends with TimeoutError
    unless someone else cancelled the task too (that cancellation goes on).
    """

    __slots__ = ("_queue", "_when", "_task", "_cancelling", "_deadline", "expired")

    def __init__(self, queue: DeadlineQueue, when: float) -> None:
        self._queue = queue
        self._when = when
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._deadline: Deadline | None = None
        self.expired = False

    def __enter__(self) -> TimeoutScope:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a timeout scope must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._deadline = self._queue.call_at(self._when, self._expire)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._deadline is not None and self._task is not None
        self._deadline.cancel()
        if (
            self.expired
            and self._task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc

    def _expire(self) -> None:
        assert self._task is not None
        self.expired = True
        self._task.cancel()
