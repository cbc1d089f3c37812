"""The SQL text of the Store's writes and point reads, shared by every SQL store.

Statements use ``?`` placeholders (SQLite's); the PostgreSQL store numbers them
(``$1``, ``$2``, ...) with :func:`numbered`. An audit append is not plain SQL:
its sequence number and hashes depend on the chain's head, which only the
store can read inside the transaction, so it travels as the :data:`AUDIT`
marker with the event's values and each store fills in the rest.
"""

from __future__ import annotations

import functools
from typing import Any

from gateway.model.records import AuditEvent, Authorization, Challenge, Order
from gateway.model.store import Delete, Insert, Op, Spend, Update
from gateway.storage import buckets, rows

Statement = tuple[str, tuple[Any, ...], bool]  # sql, params, must change a row

# Marks an audit append: its seq and hashes are filled in the writer, inside the transaction.
AUDIT = "-- audit append"
AUDIT_INSERT = (f"INSERT INTO {rows.AUDIT_TABLE} ({', '.join(rows.AUDIT_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(rows.AUDIT_COLUMNS))})")
# An authorization's columns, then its challenge's (rows.joined_authorizations reads them).
AUTHZ_SELECT = f"SELECT {rows.columns(Authorization, 'a')}, {rows.columns(Challenge, 'c')}"
# SQLite's: an authorization's columns, then its challenges' in one text column
# (rows.packed_authorization splits it): one row per authorization instead of one per
# challenge, whose columns the sqlite3 module hands over one by one. Fields are parted by
# US (0x1f), challenges by RS (0x1e): neither occurs in ids, tokens, type and status names,
# or in JSON text (which escapes control characters). ``validated`` goes as integer
# microseconds: SQLite writes a REAL as text with 15 digits only.
_PACKED_AUTHZ = (
    f"{rows.columns(Authorization, 'a')}, (SELECT group_concat(printf("
    "'%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s', c.id, c.type, c.token, c.status, "
    "CAST(round(c.validated * 1000000) AS INTEGER), c.error, c.records), char(30)) "
    "FROM (SELECT * FROM challenges WHERE authz_id = a.id ORDER BY rowid) c)")
AUTHZ_PACKED = f"SELECT {_PACKED_AUTHZ} FROM authorizations a"
# The same with the order's columns after, from rows.PACKED_WIDTH on.
AUTHZ_PACKED_WITH_ORDER = (f"SELECT {_PACKED_AUTHZ}, {rows.columns(Order, 'o')} "
                           "FROM authorizations a LEFT JOIN orders o ON o.id = a.order_id")


@functools.cache  # a handful of (model, condition) pairs; built on every read otherwise
def select(model: type, condition: str) -> str:
    """SELECT every column of ``model``'s table (decoder order) with a condition."""
    return f"SELECT {rows.columns(model)} FROM {rows.TABLES[model][0]} {condition}"


@functools.cache  # a handful of (table, columns) pairs; built on every write otherwise
def _insert_sql(table: str, cols: tuple[str, ...], count: int = 1) -> str:
    row = f"({', '.join('?' * len(cols))})"
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES {', '.join([row] * count)}"


@functools.cache
def _update_sql(table: str, cols: tuple[str, ...], expect: bool) -> str:
    sets = ", ".join(f"{c} = ?" for c in cols)
    return f"UPDATE {table} SET {sets} WHERE id = ?" + (" AND status = ?" if expect else "")


@functools.cache  # every statement text is one of a few dozen
def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1``, ``$2``, ... (no statement quotes a '?')."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))


def statements(op: Op) -> list[Statement]:
    """The SQL statements of one operation."""
    if isinstance(op, Spend):
        return [buckets.spend_statement(op)]
    model = op.model
    if isinstance(model, AuditEvent):
        if not isinstance(op, Insert):
            raise TypeError("audit events are append-only")
        return [(AUDIT, rows.audit_values(model), False)]
    if isinstance(op, Update):
        cols, params = rows.updated(model)
        params += (model.id,) if op.expect is None else (model.id, op.expect)
        return [(_update_sql(rows.TABLES[type(model)][0], cols, op.expect is not None),
                 params, True)]
    table, cols = rows.TABLES[type(model)]
    if isinstance(op, Delete):
        return [(f"DELETE FROM {table} WHERE id = ?", (model.id,), False)]
    out = [(_insert_sql(table, cols), rows.values(model), False)]
    if isinstance(model, Authorization) and model.challenges:
        # One statement for all its challenges (a multi-row VALUES): a statement
        # costs more to run than its rows cost to write.
        out.append(_challenges_insert(model.challenges))
    return out


def _challenges_insert(challenges: tuple[Challenge, ...]) -> Statement:
    table, cols = rows.TABLES[Challenge]
    params = tuple(v for chall in challenges for v in rows.values(chall))
    return _insert_sql(table, cols, len(challenges)), params, False
