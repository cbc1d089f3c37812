"""The SQLite writer's own thread: where COMMIT (the WAL write and its fsync) waits.

Every group commit hops here and back. ``loop.run_in_executor`` pays for a
general thread pool on each hop (a ``concurrent.futures.Future`` with its
condition variable, a work item, the pool's thread accounting, then an
asyncio future chained to it): about twice the CPU of the hop itself. One
thread that takes calls from a queue and answers each through
``call_soon_threadsafe`` does the same work for a single caller.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")
_Call = tuple[Callable[[], Any], asyncio.Future[Any]]


class WriterThread:
    """One thread running blocking calls, in order, for one event loop."""

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the thread; its answers go to ``loop``."""
        self._loop = loop
        self._thread.start()

    def run(self, call: Callable[[], _T]) -> asyncio.Future[_T]:
        """Queue ``call`` for the thread; the future gets its result or exception."""
        assert self._loop is not None, "start() first"
        done: asyncio.Future[_T] = self._loop.create_future()
        self._calls.put((call, done))
        return done

    def stop(self) -> None:
        """Let the thread finish the calls queued so far, then end it (waits for that)."""
        self._calls.put(None)
        self._thread.join()

    def _serve(self) -> None:
        loop = self._loop
        assert loop is not None
        while (item := self._calls.get()) is not None:
            call, done = item
            try:
                result, error = call(), None
            except BaseException as exc:  # handed to the waiting coroutine, like an executor
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(_settle, done, result, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass


def _settle(done: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if done.cancelled():
        return
    if error is None:
        done.set_result(result)
    else:
        done.set_exception(error)
