"""SQLite upkeep beside the pruner: statistics per table and handing free pages back.

Pages freed by a delete go to the file's free list and are reused by later
inserts, which is what keeps a pruned database from growing. A file created
with ``auto_vacuum = INCREMENTAL`` can also give them back to the file system,
a few at a time after each prune batch, without the full rewrite (and the
exclusive lock) of a ``VACUUM``. A file created before that setting keeps its
free pages for reuse; ``VACUUM`` run once while the gateway is stopped
converts it.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from pathlib import Path

from gateway.model.store import DatabaseStats, TableStats
from gateway.storage.retention import TABLES, rows_statement

# Set on a new file before its first table: afterwards it takes a VACUUM to change.
AUTO_VACUUM = "PRAGMA auto_vacuum = INCREMENTAL"
# One statement per page: Python's sqlite3 steps a pragma without result columns
# once, and each step of incremental_vacuum moves one page.
VACUUM_PAGE = "PRAGMA incremental_vacuum(1)"
_INCREMENTAL = 2  # the value of PRAGMA auto_vacuum for INCREMENTAL


def pages_to_give_back(conn: sqlite3.Connection, most: int) -> int:
    """How many free pages one batch may return to the file system (0 if the file cannot)."""
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != _INCREMENTAL:
        return 0
    return min(most, int(conn.execute("PRAGMA freelist_count").fetchone()[0]))


def database_stats(conn: sqlite3.Connection) -> DatabaseStats:
    """Rows and bytes of every reported table; bytes include the table's indexes."""
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    sizes = _bytes_by_table(conn)
    tables = {t: TableStats(int(conn.execute(rows_statement(t)).fetchone()[0]), sizes.get(t, 0))
              for t in TABLES}
    return DatabaseStats(pages * page_size, free * page_size, tables)


def _bytes_by_table(conn: sqlite3.Connection) -> dict[str, int]:
    """Bytes of each table with its indexes (from dbstat; empty when SQLite lacks it)."""
    try:
        found = conn.execute(
            "SELECT m.tbl_name, SUM(s.pgsize) FROM dbstat s "
            "JOIN sqlite_schema m ON m.name = s.name GROUP BY m.tbl_name").fetchall()
    except sqlite3.OperationalError:  # built without SQLITE_ENABLE_DBSTAT_VTAB
        return {}
    return {name: int(size) for name, size in found}


def stats_of_file(path: Path) -> DatabaseStats:
    """Rows and bytes per table, read on a read-only connection of its own."""
    conn = sqlite3.connect(f"file:{urllib.parse.quote(str(path))}?mode=ro", uri=True)
    try:
        return database_stats(conn)
    finally:
        conn.close()
