"""SQL of the operator's inventory: certificate search, account list, a request's audit rows.

Written once with ``?`` placeholders for every SQL store (a store that numbers
its parameters rewrites them). A certificate row is selected with its order's
row, so that names, profile and requester come from one snapshot.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.model.records import Account, Certificate, CertificateQuery, Order
from gateway.storage import rows

# The ceiling on one page, whatever the caller asks: a search never reads the whole table.
MAX_LIMIT = 1000
CERT_WIDTH = len(rows.TABLES[Certificate][1])
_CERT_SELECT = (f"SELECT {rows.columns(Certificate, 'c')}, {rows.columns(Order, 'o')} "
                "FROM certificates c JOIN orders o ON o.id = c.order_id")


def like_pattern(text: str) -> str:
    """``%text%`` for LIKE … ESCAPE '\\', the wildcards in ``text`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(query: CertificateQuery, now: datetime) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    exact = (("c.serial", query.serial.lower()), ("c.account_id", query.account),
             ("o.profile", query.profile), ("c.ca", query.ca))
    for column, value in exact:
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if query.name:
        # Identifiers are stored as JSON text; the store's caller keeps only rows
        # where one identifier really contains the name.
        where.append("LOWER(o.identifiers) LIKE ? ESCAPE '\\'")
        params.append(like_pattern(query.name.lower()))
    for bound, op in ((query.expires_after, ">="), (query.expires_before, "<")):
        if bound is not None:
            where.append(f"c.not_after {op} ?")
            params.append(bound.timestamp())
    state_sql = {"valid": "c.revoked_at IS NULL AND c.not_after > ?",
                 "revoked": "c.revoked_at IS NOT NULL",
                 "expired": "c.revoked_at IS NULL AND c.not_after <= ?"}
    if query.state:
        where.append(state_sql[query.state])
        params += [now.timestamp()] if "?" in state_sql[query.state] else []
    return where, params


def certificate_search(query: CertificateQuery, now: datetime) -> tuple[str, list[Any]]:
    """(sql, params) selecting certificate columns then order columns, one page."""
    where, params = _conditions(query, now)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    by_expiry = query.expires_after is not None or query.expires_before is not None
    order = "c.not_after, c.id" if by_expiry else "c.not_before DESC, c.id"
    limit = max(1, min(query.limit, MAX_LIMIT))
    return f"{_CERT_SELECT}{clause} ORDER BY {order} LIMIT ?", [*params, limit]


def certificate_count(query: CertificateQuery, now: datetime) -> tuple[str, list[Any]]:
    """(sql, params) counting the certificates :func:`certificate_search` would find."""
    where, params = _conditions(query, now)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT COUNT(*) FROM certificates c JOIN orders o ON o.id = c.order_id{clause}", params


# Unfinished jobs by state; finished jobs are deleted, so the table stays small.
JOB_COUNTS = "SELECT state, COUNT(*) FROM jobs GROUP BY state"


def certificate_with_order(r: rows.Row) -> tuple[Certificate, Order]:
    """Decode one row of :func:`certificate_search`."""
    return rows.certificate(r[:CERT_WIDTH]), rows.order(r[CERT_WIDTH:])


def account_list(status: str, limit: int) -> tuple[str, list[Any]]:
    """(sql, params) of a page of accounts, newest first."""
    clause = "WHERE status = ? " if status else ""
    params: list[Any] = [status] if status else []
    sql = (f"SELECT {rows.columns(Account)} FROM accounts {clause}"
           "ORDER BY created_at DESC, id LIMIT ?")
    return sql, [*params, max(1, min(limit, MAX_LIMIT))]


def request_audit(request_id: str, limit: int) -> tuple[str, list[Any]]:
    """(sql, params) of one request's audit rows, oldest first."""
    return (f"SELECT * FROM {rows.AUDIT_TABLE} WHERE request_id = ? ORDER BY seq LIMIT ?",
            [request_id, max(1, min(limit, MAX_LIMIT))])
