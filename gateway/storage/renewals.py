"""SQL of renewal information (RFC 9773), the same for SQLite and PostgreSQL."""

from __future__ import annotations

# After ``SELECT <order columns> FROM orders``: a failed replacement does not count,
# so the client may try again with the same ``replaces``.
REPLACING = ("WHERE replaces = ? AND status <> 'invalid' "
             "ORDER BY created_at DESC LIMIT 1")


def live_query(cert_columns: str, order_columns: str) -> str:
    """Certificates still valid at ``?`` (UNIX seconds) and not revoked, with their orders."""
    return (f"SELECT {cert_columns}, {order_columns} FROM certificates c "
            "JOIN orders o ON o.id = c.order_id "
            "WHERE c.not_after > ? AND c.revoked_at IS NULL ORDER BY c.not_before, c.id")
