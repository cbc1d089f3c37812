"""The ``db`` subcommands: ``db migrate``, ``db prune [--dry-run]`` and ``db stats``.

``db migrate`` brings the schema up to this gateway's version. With several
nodes on PostgreSQL, run it once from any node (or a deploy job) before
starting the upgraded nodes; a node also migrates at start, under the same
lock, so forgetting it is harmless. A node never serves a schema newer than
its own (it stops with a configuration error naming the versions).

``db prune`` runs the same retention passes as the serving gateway's pruner
(``[retention]``), until nothing more is due, and may run while the gateway
serves: each batch is one short transaction. ``db stats`` prints the rows and
bytes of every table, the database's size and its free (reusable) part.

Exit codes: 0 done, 1 the database could not be reached, 2 config error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import sys
from pathlib import Path
from typing import Any

from gateway.cli_admin import _sub
from gateway.config import Settings
from gateway.core.retention import Pruner
from gateway.model.clock import SystemClock
from gateway.model.store import DatabaseStats, Store, StoreUnavailable


def db_parser(subparsers: Any) -> Any:
    """The ``db`` group's subparsers, created once (other ``db`` subcommands join it)."""
    existing = subparsers.choices.get("db")
    if existing is not None:
        return existing.db_commands
    group = subparsers.add_parser("db", help="database upkeep: migrate, prune, stats")
    group.db_commands = group.add_subparsers(dest="db_command", required=True)
    return group.db_commands


def add_subcommands(subparsers: Any) -> None:
    """Add ``db migrate``, ``db prune`` and ``db stats`` to ``acme-gateway``."""
    db = db_parser(subparsers)
    migrate = db.add_parser("migrate", help="apply the schema migrations this gateway has")
    migrate.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                         help="TOML config file")
    migrate.set_defaults(handler=run_migrate)
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


def run_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate, printing the versions before and after."""
    try:
        before, after = asyncio.run(migrate(settings))
    except StoreUnavailable as exc:
        print(f"acme-gateway: the database is not reachable: {exc}", file=sys.stderr)
        return 1
    if before == after:
        print(f"schema at version {after}: nothing to do")
    else:
        print(f"schema migrated from version {before} to {after}")
    return 0


async def migrate(settings: Settings) -> tuple[int, int]:
    """(schema version before, after) of the configured store."""
    from gateway.app import build_store

    store = build_store(settings)
    run = getattr(store, "migrate", None)
    if run is not None:  # PostgreSQL: migrates without opening a pool
        before, after = await run()
        return int(before), int(after)
    before = _sqlite_version(Path(settings.storage_url()[len("sqlite:///"):]))
    await store.open()  # SQLite migrates when it opens
    await store.close()
    from gateway.storage.schema import MIGRATIONS

    return before, MIGRATIONS[-1][0]


def _sqlite_version(path: Path) -> int:
    """The newest migration applied to a SQLite file (0 when there is none yet)."""
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(path)) as db:
        try:
            (version,) = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")\
                .fetchone()
        except sqlite3.OperationalError:  # no schema_version table: nothing applied
            return 0
    return int(version)
