"""SQL of the retention pruner: which rows of each kind may go, and their removal.

Shared by every SQL store (``?`` placeholders; PostgreSQL rewrites them). Each
kind names the time its window counts from and the rows it must never take:

* ``orders``: finished (``valid``/``invalid``) or left unfinished (``pending``/
  ``ready``), counted from their expiry. Never ``processing`` (a CA job is in
  flight), and never one whose certificate is still kept (its CSR is what the
  key-reuse check reads). EST enrollments are orders without authorizations.
* ``authorizations``: ``invalid``, ``deactivated``, ``expired``, ``revoked`` or
  ``pending``, counted from their expiry; ``valid_authorizations`` likewise for
  ``valid`` ones. Never while their order is still in the table unfinished; the
  challenges go with them.
* ``certificates``: counted from ``not_after`` (a revoked one stays on CRLs until then).
* ``jobs``: ``done`` or ``failed``, counted from their last ``run_at``; a queued or
  waiting job is in flight and stays.

Every delete picks at most ``limit`` rows by the indexed time column, so a
batch is short and a pass over a large backlog is many short transactions.
"""

from __future__ import annotations

from dataclasses import dataclass

# The order a pass removes them in: a certificate gone frees its order, an order gone
# frees its authorizations.
KINDS = ("jobs", "certificates", "orders", "authorizations", "valid_authorizations")
# Tables the statistics report (the audit trail included: it is never pruned).
TABLES = ("accounts", "orders", "authorizations", "challenges", "certificates", "jobs",
          "eab_keys", "rate_buckets", "audit_events")

_UNFINISHED_ORDER = ("SELECT 1 FROM orders o WHERE o.id = authorizations.order_id "
                     "AND o.status IN ('pending', 'ready', 'processing')")
_AUTHZ_FREE = f"expires < ? AND NOT EXISTS ({_UNFINISHED_ORDER})"


@dataclass(frozen=True)
class Kind:
    """A kind of record: its table, which rows are past their window, oldest first."""

    table: str
    where: str
    order_by: str
    # A child table whose rows go with the parent's: (table, column naming the parent).
    children: tuple[str, str] | None = None

    def candidates(self) -> str:
        """The ids of up to ``limit`` rows past their window (params: before, limit)."""
        return (f"SELECT id FROM {self.table} WHERE {self.where} "
                f"ORDER BY {self.order_by} LIMIT ?")


_KINDS = {
    "orders": Kind("orders", "status IN ('valid', 'invalid', 'pending', 'ready') "
                             "AND expires < ? AND NOT EXISTS (SELECT 1 FROM certificates c "
                             "WHERE c.order_id = orders.id)", "expires"),
    "authorizations": Kind("authorizations", f"status <> 'valid' AND {_AUTHZ_FREE}", "expires",
                           ("challenges", "authz_id")),
    "valid_authorizations": Kind("authorizations", f"status = 'valid' AND {_AUTHZ_FREE}",
                                 "expires", ("challenges", "authz_id")),
    "certificates": Kind("certificates", "not_after < ?", "not_after"),
    "jobs": Kind("jobs", "state IN ('done', 'failed') AND COALESCE(run_at, 0) < ?", "run_at"),
}


def kind(name: str) -> Kind:
    """The kind called ``name``; ValueError names the known ones."""
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"no record kind {name!r}; known: {', '.join(KINDS)}") from None


def delete_statements(name: str) -> list[str]:
    """The deletes of one batch, children first (each takes params: before, limit).

    Each re-selects the same oldest rows inside the one transaction, so the
    children removed are exactly those of the parents removed after them.
    """
    k = kind(name)
    out = []
    if k.children is not None:
        child, parent = k.children
        out.append(f"DELETE FROM {child} WHERE {parent} IN ({k.candidates()})")
    out.append(f"DELETE FROM {k.table} WHERE id IN ({k.candidates()})")
    return out


def count_statement(name: str) -> str:
    """How many rows one batch would remove (params: before, limit): the dry run."""
    return f"SELECT COUNT(*) FROM ({kind(name).candidates()}) AS due"


def rows_statement(table: str) -> str:
    """The row count of one of :data:`TABLES`."""
    if table not in TABLES:
        raise ValueError(f"no table {table!r}")
    return f"SELECT COUNT(*) FROM {table}"


# ``audit archive`` (gateway.audit_archive) removes rows it has written to a signed file:
# at most ``limit`` of the oldest rows up to the cut (params: through, limit, through,
# its hash), only while the cut row still has the hash the archive signed, and never
# the newest row (the next append links to it).
DROP_ARCHIVED_AUDIT = (
    "DELETE FROM audit_events WHERE seq IN (SELECT seq FROM audit_events WHERE seq <= ? "
    "AND seq < (SELECT MAX(seq) FROM audit_events) ORDER BY seq LIMIT ?) "
    "AND EXISTS (SELECT 1 FROM audit_events WHERE seq = ? AND hash = ?)")
