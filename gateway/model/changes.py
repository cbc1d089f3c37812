"""A count of changes shared by forked processes: how a cache knows it is still good."""

from __future__ import annotations

import mmap
import struct


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
