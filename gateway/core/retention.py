"""The pruner: removes finished records once their retention window has passed.

Every ``[retention] interval_seconds`` the primary process runs one pass: for
each record kind, in :data:`gateway.storage.retention.KINDS` order, it deletes
batches of at most ``batch_size`` rows until a batch comes back short (or
``max_batches`` ran). Each batch is one short transaction in the store's
ordinary write path, so requests keep committing between batches; the next
pass picks up what a long backlog left. Only the primary process prunes (the
others would race it for the same rows), and among nodes sharing one database
a pass first takes the single token of a bucket in the store that refills in
one interval (:meth:`Pruner.take_turn`): one pass per interval across all of
them. The deletes are idempotent besides, so a pass that outlasts the
interval and meets another costs only wasted work.

A pass also reads the database statistics that ``/metrics`` exports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime

from gateway.core.retention_settings import RetentionSettings
from gateway.model.buckets import Bucket
from gateway.model.clock import Clock
from gateway.model.store import DatabaseStats, Spend, Store
from gateway.storage.retention import KINDS

log = logging.getLogger("gateway.retention")
# The rate-limit bucket whose one token a pass takes (see Pruner.take_turn).
TURN_KEY = "retention:pass"


@dataclass
class PassReport:
    """What one pass removed (or, dry, would remove) per record kind."""

    removed: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Records of every kind."""
        return sum(self.removed.values())


class Pruner:
    """Runs retention passes on a timer and keeps the latest database statistics."""

    def __init__(self, settings: RetentionSettings, store: Store, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.stats: DatabaseStats | None = None
        self._task: asyncio.Task[None] | None = None

    async def run_pass(self, *, dry_run: bool = False) -> PassReport:
        """One pass over every kind; with ``dry_run`` count the first batch of each, remove none."""
        report = PassReport()
        now = self.clock.now()
        for kind in KINDS:
            before = now - self.settings.windows[kind]
            report.removed[kind] = await self._prune_kind(kind, before, dry_run)
        return report

    async def _prune_kind(self, kind: str, before: datetime, dry_run: bool) -> int:
        size = self.settings.batch_size
        if dry_run:
            return await self.store.prune(kind, before, size * self.settings.max_batches,
                                          dry_run=True)
        removed = 0
        for _ in range(self.settings.max_batches):
            batch = await self.store.prune(kind, before, size)
            removed += batch
            if batch < size:
                break
            await asyncio.sleep(0)  # let the requests queued meanwhile commit first
        return removed

    async def take_turn(self) -> bool:
        """True when this node runs the next pass: no node has in this interval."""
        turn = Bucket(1, self.settings.interval_seconds)
        return await self.store.apply([Spend(TURN_KEY, turn, 1, self.clock.now())])

    async def refresh_stats(self) -> DatabaseStats:
        """Read the database statistics again (rows and bytes per table)."""
        self.stats = await self.store.table_stats()
        return self.stats

    def start(self) -> None:
        """Start the timer (the primary process only). With retention off it only reads
        the statistics that ``/metrics`` exports."""
        self._task = asyncio.create_task(self._loop(), name="retention-pruner")

    async def stop(self) -> None:
        """Stop the timer; a batch in progress finishes in the store's own transaction."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                if self.settings.enabled and await self.take_turn():
                    report = await self.run_pass()
                    if report.total:
                        log.info("retention removed %s", _summary(report))
                await self.refresh_stats()
            except Exception:  # a failed pass must not stop the next ones
                log.exception("retention pass failed; retrying at the next interval")
            await asyncio.sleep(self.settings.interval_seconds)


def _summary(report: PassReport) -> str:
    return ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in report.removed.items() if n)
