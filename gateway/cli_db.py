"""``acme-gateway db migrate``: bring the database schema up to this gateway's version.

With several nodes on PostgreSQL, run it once from any node (or a deploy job)
before starting the upgraded nodes; a node also migrates at start, under the
same lock, so forgetting it is harmless. A node never serves a schema newer
than its own (it stops with a configuration error naming the versions).

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

from gateway.config import Settings
from gateway.model.store import StoreUnavailable


def add_subcommands(subparsers: Any) -> None:
    """Add ``db migrate`` to the top-level subparsers of ``acme-gateway``."""
    db = subparsers.add_parser("db", help="database schema maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    migrate = db_sub.add_parser("migrate", help="apply the schema migrations this gateway has")
    migrate.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                         help="TOML config file")
    migrate.set_defaults(handler=run_migrate)


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
