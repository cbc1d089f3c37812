"""The ``db`` subcommands: ``db prune [--dry-run]`` and ``db stats``.

``db prune`` runs the same retention passes as the serving gateway's pruner
(``[retention]``), until nothing more is due, and may run while the gateway
serves: each batch is one short transaction. ``db stats`` prints the rows and
bytes of every table, the database's size and its free (reusable) part.
"""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli_admin import _sub
from gateway.config import Settings
from gateway.core.clock import SystemClock
from gateway.core.retention import Pruner
from gateway.storage.base import DatabaseStats, Store


def db_parser(subparsers: Any) -> Any:
    """The ``db`` group's subparsers, created once (other ``db`` subcommands join it)."""
    existing = subparsers.choices.get("db")
    if existing is not None:
        return existing.db_commands
    group = subparsers.add_parser("db", help="database upkeep: prune, stats")
    group.db_commands = group.add_subparsers(dest="db_command", required=True)
    return group.db_commands


def add_subcommands(subparsers: Any) -> None:
    """Add ``db prune`` and ``db stats`` to ``acme-gateway``."""
    db = db_parser(subparsers)
    prune = _sub(db, "prune", "remove records whose retention window has passed "
                 "([retention] in the config)", db_prune)
    prune.add_argument("--dry-run", action="store_true",
                       help="count what would be removed; remove nothing")
    _sub(db, "stats", "rows and bytes per table, database size", db_stats)


async def db_prune(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """Prune until nothing more is due (or, dry, count what is due now)."""
    pruner = Pruner(settings.retention, store, SystemClock())
    report = await pruner.run_pass(dry_run=args.dry_run)
    totals = dict(report.removed)
    while not args.dry_run and report.total:
        report = await pruner.run_pass()
        for kind, n in report.removed.items():
            totals[kind] += n
    verb = "would remove" if args.dry_run else "removed"
    for kind, n in totals.items():
        print(f"{kind:<22} {verb} {n}")
    return 0


async def db_stats(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """Print each table's rows and bytes, then the database's size."""
    print(stats_text(await store.table_stats()))
    return 0


def stats_text(stats: DatabaseStats) -> str:
    """The ``db stats`` table: one line per table, then the totals."""
    lines = [f"{'table':<16} {'rows':>12} {'bytes':>14}"]
    lines += [f"{name:<16} {t.rows:>12} {t.bytes:>14}" for name, t in stats.tables.items()]
    lines.append(f"{'database':<16} {'':>12} {stats.size_bytes:>14}")
    lines.append(f"{'free for reuse':<16} {'':>12} {stats.free_bytes:>14}")
    return "\n".join(lines)
