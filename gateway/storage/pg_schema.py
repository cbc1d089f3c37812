"""PostgreSQL's numbered schema migrations, and the runner behind ``db migrate``.

PostgreSQL keeps its own list, numbered independently of SQLite's: the first
three are SQLite's portable migrations 1–3, word for word; later ones are
written for PostgreSQL alone. A new table or column for a new Store method is
a new entry at the end of each list. Never edit an entry that has shipped.

Every run takes a transaction-scoped advisory lock first, so nodes started at
the same moment migrate one after the other, and the second finds the work
done. A database whose newest version is above :data:`LATEST` was migrated by
a newer gateway: this one refuses to serve it rather than write rows the newer
schema may not expect.
"""

from __future__ import annotations

from typing import Protocol

from gateway.errors import ConfigError
from gateway.storage.schema import MIGRATIONS as PORTABLE

MIGRATIONS: tuple[tuple[int, str], ...] = (
    *PORTABLE[:3],
    # SQLite lists orders and challenges by rowid; PostgreSQL has none, so each row
    # takes a number from a sequence when inserted. Nonces are spent in one table
    # shared by every node (see gateway.core.node_nonces), and node_secrets holds
    # the key that all nodes sign their nonces with.
    (4, """
ALTER TABLE orders ADD COLUMN created_seq BIGSERIAL;
DROP INDEX orders_account;
CREATE INDEX orders_account ON orders (account_id, created_seq);
ALTER TABLE challenges ADD COLUMN created_seq BIGSERIAL;
CREATE TABLE spent_nonces (
    nonce TEXT PRIMARY KEY,
    expires DOUBLE PRECISION NOT NULL
);
CREATE INDEX spent_nonces_expires ON spent_nonces (expires);
CREATE TABLE node_secrets (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
"""),
    # Rate-limit buckets: SQLite's migration 4, portable as written.
    (5, PORTABLE[3][1]),
    # Renewal information (RFC 9773): SQLite's migration 5, portable as written.
    (6, PORTABLE[4][1]),
    # SCEP one-time passwords and transactions: SQLite's migration 6, portable as written.
    (7, PORTABLE[5][1]),
    # The operator's inventory indexes: SQLite's migration 7, portable as written.
    (8, PORTABLE[6][1]),
    # Retention's indexes: SQLite's migration 8, portable as written.
    (9, PORTABLE[7][1]),
)
LATEST = MIGRATIONS[-1][0]
# pg_advisory_xact_lock key of schema migrations ("gw-migr" as a number).
MIGRATION_LOCK = 0x67772D6D69677200


class Connection(Protocol):
    """The part of an asyncpg connection the runner uses."""

    async def execute(self, query: str, *args: object) -> str: ...

    async def fetchval(self, query: str, *args: object) -> object: ...


def too_new(where: str, version: int) -> ConfigError:
    """The refusal to serve a database migrated by a newer gateway."""
    return ConfigError(where, "storage.url",
                       f"the database schema is at version {version}, newer than this "
                       f"gateway's {LATEST}: run the newer gateway, or restore the backup "
                       "taken before it migrated")


async def current_version(conn: Connection) -> int:
    """The newest applied migration (0 on an empty database)."""
    await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    found = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
    assert isinstance(found, int)
    return found


async def migrate(conn: Connection, where: str) -> tuple[int, int]:
    """Apply the missing migrations in one transaction; (version before, version after).

    The caller opens the transaction; ``where`` names the database in errors.
    """
    await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
    before = await current_version(conn)
    if before > LATEST:
        raise too_new(where, before)
    for version, sql in MIGRATIONS:
        if version > before:
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_version VALUES ($1)", version)
    return before, max(before, LATEST)
