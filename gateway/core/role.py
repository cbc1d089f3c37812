"""Which of the gateway's serving processes this one is (``serve --workers N``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessRole:
    """This process's place among the ``count`` processes serving one data directory.

    With one process (the default) everything runs here. With several, they share
    the store; the first (``index`` 0) also does the work that must happen once:
    resuming validations after a restart and scanning for due CA jobs.
    """

    index: int = 0
    count: int = 1

    @property
    def primary(self) -> bool:
        """True for the process that resumes and scans (the only one, by default)."""
        return self.index == 0

    @property
    def shared(self) -> bool:
        """True when other processes serve the same store at the same time."""
        return self.count > 1
