"""Which of the gateway's serving processes this one is (``serve --workers N``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gateway.model.changes import ChangeCounter


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
