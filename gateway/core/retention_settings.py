"""The ``[retention]`` table: how long each kind of finished record is kept.

Each window counts from the time the record stops being useful (see
:mod:`gateway.storage.retention` for which time that is per kind, and what is
never removed). Windows are in days and may be fractions (a soak test uses
minutes). The audit trail is not a kind: the pruner never deletes it
(``acme-gateway audit`` keeps its own tools for that).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.config_table import Table

DAY = 86400.0
# Record kind → (config key, default days).
WINDOW_KEYS: Mapping[str, tuple[str, float]] = {
    "jobs": ("jobs_days", 7.0),
    "certificates": ("certificates_days", 365.0),
    "orders": ("orders_days", 30.0),
    "authorizations": ("authorizations_days", 30.0),
    "valid_authorizations": ("valid_authorizations_days", 0.0),
}


def _default_windows() -> dict[str, timedelta]:
    return {kind: timedelta(days=days) for kind, (_key, days) in WINDOW_KEYS.items()}


@dataclass(frozen=True)
class RetentionSettings:
    """The pruner's schedule and batch, and the window of each record kind."""

    enabled: bool = True
    interval_seconds: float = 600.0
    batch_size: int = 500
    # Most batches of one kind in one pass: a large backlog is worked off over several
    # passes instead of holding the writer for minutes.
    max_batches: int = 100
    windows: Mapping[str, timedelta] = field(default_factory=_default_windows)


def parse(t: Table) -> RetentionSettings:
    """``[retention]`` as settings; errors name the file and the key."""
    windows = {kind: timedelta(days=t.float(key, days))
               for kind, (key, days) in WINDOW_KEYS.items()}
    settings = RetentionSettings(
        enabled=t.bool("enabled", True),
        interval_seconds=t.float("interval_seconds", 600.0, 1.0),
        batch_size=t.int("batch_size", 500, 1, 100_000),
        max_batches=t.int("max_batches", 100, 1, 1_000_000),
        windows=windows,
    )
    t.check_unknown()
    return settings
