"""Which of the gateway's serving processes this one is (``serve --workers N``)."""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path


class ChangeCounter:
    """A count of changes made by any of several forked processes, in shared memory.

    Each process adds only to its own slot, so no lock is needed and a process
    killed mid-update blocks nobody; the sum of the slots grows with every
    change anywhere. A process that remembers the sum beside something it
    cached knows the cache is still good while the sum is unchanged. Create it
    in the parent before forking; each child takes its slot with
    :meth:`for_process`.
    """

    def __init__(self, processes: int) -> None:
        self._slots = struct.Struct(f"<{processes}Q")
        self._memory = mmap.mmap(-1, self._slots.size)
        self._offset = 0

    def for_process(self, index: int) -> ChangeCounter:
        """The same counter, adding to slot ``index``."""
        if not 0 <= index < self._slots.size // 8:
            raise ValueError(f"no slot {index}")
        view = object.__new__(ChangeCounter)
        view._slots, view._memory, view._offset = self._slots, self._memory, index * 8
        return view

    def add(self) -> None:
        """Record one change (by this process)."""
        (mine,) = struct.unpack_from("<Q", self._memory, self._offset)
        struct.pack_into("<Q", self._memory, self._offset, mine + 1)

    def value(self) -> int:
        """Changes so far, by every process."""
        return sum(self._slots.unpack_from(self._memory))


@dataclass(frozen=True)
class ProcessRole:
    """This process's place among the ``count`` processes serving one data directory.

    With one process (the default) everything runs here. With several, they share
    the store; the first (``index`` 0) also does the work that must happen once:
    resuming validations after a restart and scanning for due CA jobs.
    ``account_changes`` counts account writes in any of them (see the SQLite
    store's account cache); ``metrics_dir`` is where they all keep their metrics.
    """

    index: int = 0
    count: int = 1
    account_changes: ChangeCounter | None = field(default=None, compare=False)
    # Where the workers' metrics are merged (see gateway.metrics); None for one process.
    metrics_dir: Path | None = field(default=None, compare=False)
    # True when other gateway nodes serve the same store (PostgreSQL): jobs are leased.
    other_nodes: bool = False

    @property
    def primary(self) -> bool:
        """True for the process that resumes and scans (the only one, by default)."""
        return self.index == 0

    @property
    def shared(self) -> bool:
        """True when other processes serve the same store at the same time."""
        return self.count > 1 or self.other_nodes
