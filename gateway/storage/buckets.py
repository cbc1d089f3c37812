"""SQL of the rate-limit buckets, one row per bucket: ``(key, full_at)``.

The arithmetic is :mod:`gateway.core.ratelimits.bucket`'s, written as one
conditional UPSERT: the row is created full minus ``cost``, or moved on only if
the bucket holds ``cost`` tokens. A refused spend changes no row, which fails
the unit it is part of. ``INSERT … ON CONFLICT … DO UPDATE … WHERE`` reads
the same in SQLite and PostgreSQL (where ``MAX`` of two values is ``GREATEST``).
"""

from __future__ import annotations

import functools
from typing import Any

from gateway.model.buckets import SLACK_SECONDS
from gateway.model.store import Spend

TABLE = "rate_buckets"
_UPSERT = (f"INSERT INTO {TABLE} (key, full_at) VALUES (?, ?) "
           f"ON CONFLICT (key) DO UPDATE SET full_at = {{greatest}}({TABLE}.full_at, ?) + ?")
_IF_ROOM = f" WHERE {{greatest}}({TABLE}.full_at, ?) + ? - ? <= ?"


def spend_statement(op: Spend, greatest: str = "MAX") -> tuple[str, tuple[Any, ...], bool]:
    """(sql, params, must change a row) of one spend; an overdraw always changes its row."""
    bucket = op.bucket
    if not op.overdraw and op.cost > bucket.capacity:
        raise ValueError(f"bucket {op.key!r} can never hold {op.cost} tokens")
    now = op.at.timestamp()
    step = op.cost * bucket.interval
    params: tuple[Any, ...] = (op.key, now + step, now, step)
    if op.overdraw:
        return _sql(greatest, False), params, False
    return _sql(greatest, True), (*params, now, step, now, bucket.period + SLACK_SECONDS), True


@functools.cache  # one str object per text: its hash is kept, and the statement cache hits at once
def _sql(greatest: str, if_room: bool) -> str:
    sql = _UPSERT.format(greatest=greatest)
    return sql + _IF_ROOM.format(greatest=greatest) if if_room else sql


def full_at_query(count: int) -> str:
    """The ``full_at`` of ``count`` named buckets."""
    return f"SELECT key, full_at FROM {TABLE} WHERE key IN ({', '.join('?' * count)})"


FORGET_FULL = f"DELETE FROM {TABLE} WHERE full_at <= ?"
