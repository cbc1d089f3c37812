"""The local CA's ledger in PostgreSQL, for gateway nodes on several hosts signing with one key.

Nodes that share a CA key (an HSM reachable from every host, or the same key
file) must share what the key has signed: the serials (so that OCSP answers
"good" for a certificate another node issued, and a serial is never recorded
twice), the revocations (so that every node's OCSP and CRL list them) and the
CRL numbers (so that CRLs increase across all nodes, RFC 5280 §5.2.3). This
ledger keeps them in the database named by the CA's ``ledger_url`` option,
in tables of its own, keyed by the CA's name so that several CAs may share a
database. It offers the same methods as :class:`connectors.localca.store.CALedger`.

The SQLite ledger orders a CRL snapshot against revocations with its write
lock; here both take the same transaction-scoped advisory lock. ``exclusive``
runs the caller's function (publishing crl.der on this host) under that lock
as well, so a host never replaces its CRL with a lower number. Each CRL a
host signs is also offered to the ledger (``share_crl``), which keeps the
highest-numbered one; a host that sees a CRL number above the one it holds
takes that CRL from the ledger, so every host serves the same newest CRL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from connectors.base import CAUnavailable
from connectors.localca.settings import LocalCASettings
from connectors.localca.store import (
    CALedger,
    CRLSnapshot,
    CRLState,
    RevokedEntry,
    SerialStatus,
)

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS localca_issued (
    ca TEXT NOT NULL, serial TEXT NOT NULL, not_after BIGINT NOT NULL,
    request_id TEXT NOT NULL, der BYTEA, PRIMARY KEY (ca, serial));
CREATE INDEX IF NOT EXISTS localca_issued_request ON localca_issued (ca, request_id);
CREATE TABLE IF NOT EXISTS localca_revoked (
    ca TEXT NOT NULL, serial TEXT NOT NULL, reason INTEGER NOT NULL,
    revoked_at BIGINT NOT NULL, not_after BIGINT NOT NULL, PRIMARY KEY (ca, serial));
CREATE TABLE IF NOT EXISTS localca_meta (
    ca TEXT NOT NULL, key TEXT NOT NULL, value BIGINT NOT NULL, PRIMARY KEY (ca, key));
CREATE TABLE IF NOT EXISTS localca_crl (
    ca TEXT PRIMARY KEY, number BIGINT NOT NULL, der BYTEA NOT NULL);
"""
_SCHEMA_LOCK = 0x6C6F63616C636100  # "localca" as a number: one schema creation at a time
_BUMP = ("INSERT INTO localca_meta VALUES ($1, $2, 1) ON CONFLICT (ca, key) "
         "DO UPDATE SET value = localca_meta.value + 1")
_SET = ("INSERT INTO localca_meta VALUES ($1, $2, $3) ON CONFLICT (ca, key) "
        "DO UPDATE SET value = excluded.value")
_META = "SELECT key, value FROM localca_meta WHERE ca = $1"
_REVOKED = ("SELECT serial, reason, revoked_at FROM localca_revoked "
            "WHERE ca = $1 AND not_after >= $2")


def _hex(serial: int) -> str:
    return format(serial, "x")


def _ts(when: datetime) -> int:
    return int(when.timestamp())


def _entries(rows: list[Any]) -> list[RevokedEntry]:
    return [RevokedEntry(int(s, 16), reason, datetime.fromtimestamp(at, UTC))
            for s, reason, at in rows]


class PgCALedger:
    """Issued and revoked serials of one CA, in a PostgreSQL database shared by every node."""

    def __init__(self, url: str, ca: str, password: str | None = None) -> None:
        self.url = url
        self.ca = ca
        self._password = password
        self._pool: Any = None
        # The lock that orders CRL numbers against revocations, one per CA.
        self._lock_key = _lock_key(ca)

    async def open(self) -> None:
        """Connect and create the tables if needed."""
        try:
            import asyncpg
        except ImportError as exc:
            raise CAUnavailable("ledger_url needs asyncpg: pip install "
                                "'acme-gateway[postgres]'") from exc
        try:
            self._pool = await asyncpg.create_pool(self.url, password=self._password,
                                                   min_size=0, max_size=4, timeout=5.0)
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
                await conn.execute(_SCHEMA)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise CAUnavailable(f"the CA ledger database is not reachable: {exc}") from exc

    async def close(self) -> None:
        """Close the connections."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _call(self, fn: Callable[[Any], Any]) -> Any:
        """``fn(connection)`` in a transaction; database failures are CAUnavailable."""
        import asyncpg

        if self._pool is None:
            raise CAUnavailable(f"the CA ledger of {self.ca!r} is not open; start the connector")
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                return await fn(conn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise CAUnavailable(f"the CA ledger database failed: {exc}") from exc

    async def record_issued(self, serial: int, not_after: datetime, request_id: str,
                            der: bytes | None = None) -> None:
        """Persist one issued serial and its certificate."""
        await self._call(lambda c: c.execute(
            "INSERT INTO localca_issued VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            self.ca, _hex(serial), _ts(not_after), request_id, der))

    async def issued_for(self, request_id: str) -> bytes | None:
        """The certificate (DER) issued earlier for ``request_id``, if any."""
        der = await self._call(lambda c: c.fetchval(
            "SELECT der FROM localca_issued WHERE ca = $1 AND request_id = $2 "
            "AND der IS NOT NULL LIMIT 1", self.ca, request_id))
        return bytes(der) if der is not None else None

    async def revoke(self, serial: int, reason: int, when: datetime, not_after: datetime) -> bool:
        """Record a revocation; False when the serial was revoked already."""

        async def insert(conn: Any) -> bool:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._lock_key)
            status = await conn.execute(
                "INSERT INTO localca_revoked VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                self.ca, _hex(serial), reason, _ts(when), _ts(not_after))
            if status.endswith(" 0"):
                return False
            await conn.execute(_BUMP, self.ca, "revocations")
            return True

        return bool(await self._call(insert))

    async def revoked_entries(self, now: datetime) -> list[RevokedEntry]:
        """Revocations of unexpired certificates."""
        return _entries(await self._call(lambda c: c.fetch(_REVOKED, self.ca, _ts(now))))

    async def status(self, serial: int) -> SerialStatus:
        """Whether this CA issued ``serial`` and whether it is revoked."""

        async def select(conn: Any) -> tuple[Any, Any]:
            rev = await conn.fetchrow("SELECT reason, revoked_at FROM localca_revoked "
                                      "WHERE ca = $1 AND serial = $2", self.ca, _hex(serial))
            issued = await conn.fetchval("SELECT 1 FROM localca_issued WHERE ca = $1 "
                                         "AND serial = $2", self.ca, _hex(serial))
            return rev, issued

        rev, issued = await self._call(select)
        if rev is not None:
            at = datetime.fromtimestamp(rev[1], UTC)
            return SerialStatus("revoked", RevokedEntry(serial, rev[0], at))
        return SerialStatus("good" if issued else "unknown")

    async def crl_snapshot(self, now: datetime) -> CRLSnapshot:
        """Allocate the next CRL number and read what it lists, under the revocation lock."""

        async def snapshot(conn: Any) -> CRLSnapshot:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._lock_key)
            await conn.execute(_BUMP, self.ca, "crl_number")
            meta = dict(await conn.fetch(_META, self.ca))
            await conn.execute(_SET, self.ca, "crl_covered", meta.get("revocations", 0))
            rows = await conn.fetch(_REVOKED, self.ca, _ts(now))
            return CRLSnapshot(int(meta["crl_number"]), _entries(rows))

        result: CRLSnapshot = await self._call(snapshot)
        return result

    async def crl_state(self) -> CRLState:
        """The newest CRL number allocated and the revocation counters."""
        meta = dict(await self._call(lambda c: c.fetch(_META, self.ca)))
        return CRLState(meta.get("crl_number", 0), meta.get("crl_covered", 0),
                        meta.get("revocations", 0))

    async def exclusive(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (in a thread) while holding the lock every node takes to publish."""

        async def locked(conn: Any) -> T:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._lock_key)
            return await asyncio.to_thread(fn)

        result: T = await self._call(locked)
        return result

    async def share_crl(self, number: int, der: bytes) -> None:
        """Offer a CRL this host signed; kept if its number is the highest so far."""
        await self._call(lambda c: c.execute(
            "INSERT INTO localca_crl VALUES ($1, $2, $3) ON CONFLICT (ca) DO UPDATE "
            "SET number = excluded.number, der = excluded.der "
            "WHERE localca_crl.number < excluded.number", self.ca, number, der))

    async def shared_crl(self) -> bytes | None:
        """The highest-numbered CRL any host shared (the caller checks its signature)."""
        der = await self._call(lambda c: c.fetchval(
            "SELECT der FROM localca_crl WHERE ca = $1", self.ca))
        return bytes(der) if der is not None else None

    async def counts(self) -> tuple[int, int]:
        """How many serials were issued and revoked (for ``ca info``)."""

        async def count(conn: Any) -> tuple[int, int]:
            issued = await conn.fetchval(
                "SELECT COUNT(*) FROM localca_issued WHERE ca = $1", self.ca)
            revoked = await conn.fetchval(
                "SELECT COUNT(*) FROM localca_revoked WHERE ca = $1", self.ca)
            return int(issued), int(revoked)

        result: tuple[int, int] = await self._call(count)
        return result


def _lock_key(ca: str) -> int:
    """A stable 63-bit advisory lock key for one CA's ledger."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"localca:{ca}".encode()).digest()[:8], "big") >> 1



def make_ledger(name: str, settings: LocalCASettings) -> CALedger | PgCALedger:
    """The CA's ledger: in ``ledger_url``'s database when set, else ca.db beside the CA."""
    if settings.ledger_url:
        return PgCALedger(settings.ledger_url, name, settings.ledger_password)
    return CALedger(settings.dir / "ca.db")
