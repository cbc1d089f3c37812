"""How a group of SQLite write units commits: one savepoint, and the audit chain inside.

:func:`apply_group` runs every unit of a group in the open transaction of the
store's writer, each all-or-nothing; :class:`Chain` appends audit events after
the chain's head as read inside that transaction (which holds SQLite's write
lock), so events from another process (the CLI) between two commits are seen.
Nothing here commits: :class:`gateway.storage.sqlite.SQLiteStore` does.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from gateway import audit_chain
from gateway.model.store import Conflict
from gateway.storage import rows
from gateway.storage.sqltext import AUDIT, AUDIT_INSERT, Statement

AUDIT_HEAD = f"SELECT seq, hash FROM {rows.AUDIT_TABLE} ORDER BY seq DESC LIMIT 1"


def bind_plainly() -> None:
    """Register identity adapters for None and bytes, the parameter types sqlite3 adapts.

    sqlite3 binds an int, float or str as it is, but passes every None and
    bytes parameter through its adapter registry first: without an entry,
    it looks up ``__adapt__`` and ``__conform__``, and each miss builds and
    drops an AttributeError (about 2,000 instructions a parameter, and a
    write of an order binds some thirty). With an entry, it makes one C call.
    The adapters return their argument, so what is bound is unchanged; the
    registry is the process's, which is harmless for that reason.
    """
    sqlite3.register_adapter(type(None), _NO_VALUE_GET)
    sqlite3.register_adapter(bytes, bytes)  # bytes(b) is b itself for a bytes object


# A C callable that returns None for its one argument: an empty dict's get.
_NO_VALUE: dict[Any, Any] = {}
_NO_VALUE_GET = _NO_VALUE.get


def chain_head(last: Any | None) -> tuple[int, str]:
    """(seq, hash) of the newest audit row, or of the chain's start when there is none."""
    return (last[0], last[1]) if last else (0, audit_chain.GENESIS)


class Unit:
    """One caller's all-or-nothing list of statements and the future it waits on."""

    def __init__(self, stmts: list[Statement], future: asyncio.Future[bool]) -> None:
        self.stmts = stmts
        self.future = future
        self.result: bool | BaseException = False
        self.rowcount = 0  # rows changed by the unit's last statement (what a prune counts)


class Chain:
    """The audit chain's head during one write transaction.

    It is read inside the transaction (which holds SQLite's write lock), so a
    CLI appending from another process between two of our commits is seen.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.head: tuple[int, str] | None = None
        # The group's statements run through one cursor: conn.execute makes and drops
        # a cursor for every statement.
        self.cursor = conn.cursor()

    def append(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """The audit row's values with its seq, previous hash and own hash filled in."""
        if self.head is None:
            self.head = chain_head(self.conn.execute(AUDIT_HEAD).fetchone())
        seq, prev = self.head[0] + 1, self.head[1]
        digest = audit_chain.link(prev, (seq, *values))
        self.head = (seq, digest)
        return (seq, *values, prev, digest)


def run_unit(conn: sqlite3.Connection, unit: Unit, chain: Chain) -> bool:
    """Execute one unit's statements; False (and ``unit.result`` says why) when it fails.

    A failed unit leaves its earlier statements applied: the caller undoes them.
    """
    try:
        for sql, params, must_change in unit.stmts:
            if sql == AUDIT:
                sql, params = AUDIT_INSERT, chain.append(params)
            unit.rowcount = chain.cursor.execute(sql, params).rowcount
            if unit.rowcount == 0 and must_change:
                unit.result = False
                return False
    except sqlite3.IntegrityError as exc:
        unit.result = Conflict(str(exc))
        return False
    unit.result = True
    return True


def apply_unit(conn: sqlite3.Connection, unit: Unit, chain: Chain) -> None:
    """One unit inside its own SAVEPOINT: a failure undoes this unit alone."""
    mark = chain.head
    conn.execute("SAVEPOINT unit")
    try:
        if not run_unit(conn, unit, chain):
            conn.execute("ROLLBACK TO unit")
            chain.head = mark
    finally:
        conn.execute("RELEASE unit")


def apply_group(conn: sqlite3.Connection, batch: list[Unit]) -> None:
    """Every unit of a group, each all-or-nothing, in one open transaction.

    Units almost never fail, so the group first runs without a savepoint per
    unit (two statements fewer each). When one fails, the group goes back to
    its own savepoint and runs again without it: the units before it see the
    same rows as the first time, so they succeed again, and the ones after it
    each get a savepoint, which gives every unit the result it would have had
    alone in order. A group of one unit runs without the savepoint.
    """
    chain = Chain(conn)
    if len(batch) == 1:
        # A group of one needs no savepoint (a statement, and a copy of each page it
        # changes into the statement journal): when its unit fails, the transaction
        # holds nothing else, and ROLLBACK undoes it (there is then nothing to commit).
        try:
            if not run_unit(conn, batch[0], chain):
                conn.execute("ROLLBACK")
        finally:
            chain.cursor.close()
        return
    conn.execute("SAVEPOINT grp")
    try:
        failed = next((u for u in batch if not run_unit(conn, u, chain)), None)
        if failed is None:
            return
        conn.execute("ROLLBACK TO grp")
        chain.head = None  # what the failed run appended is undone: read the head again
        for unit in batch:
            if unit is not failed:
                apply_unit(conn, unit, chain)
    finally:
        chain.cursor.close()  # ends a statement left pending (a PRAGMA's rows unread)


def apply_group_or_roll_back(conn: sqlite3.Connection, batch: list[Unit]) -> None:
    """:func:`apply_group`, ending the transaction with ROLLBACK if it raises."""
    try:
        apply_group(conn, batch)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
