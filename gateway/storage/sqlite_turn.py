"""Whose turn it is to write, when several processes share one SQLite file.

SQLite's own wait for a write lock sleeps and polls (1, 2, 5 … 100 ms): two
busy processes (``serve --workers N``) would spend most of their time asleep.
An flock on a side file queues them in the kernel instead, which wakes the
next one as soon as the lock is released (also when its holder dies).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class WriteTurn:
    """The side-file lock of one shared database; without a file, always this process's turn."""

    def __init__(self) -> None:
        self._fd: int | None = None

    def open(self, database: Path) -> None:
        """Share the turn with the other processes writing ``database``."""
        self._fd = os.open(f"{database}.writers", os.O_RDWR | os.O_CREAT, 0o600)

    def take(self, block: bool) -> bool:
        """Take the turn; without ``block``, False at once while another process has it."""
        if self._fd is None:
            return True
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return True

    def end(self) -> None:
        """Give the turn back (harmless when not held)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the side file; the turn is then always this process's."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
