"""Shared by the audit tests: a data directory with a config, rows, anchors and tampering."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway import audit, audit_chain, cli, config
from gateway.config import Settings
from gateway.core.anchoring import AnchorWriter
from gateway.model.clock import FakeClock
from gateway.storage.sqlite import SQLiteStore
from tests.e2e.harness import to_toml


def write_config(tmp_path: Path, **audit_keys: Any) -> tuple[Path, Settings]:
    """A config on ``tmp_path`` as data directory, and its settings."""
    doc: dict[str, Any] = {"server": {"data_dir": str(tmp_path)}}
    if audit_keys:
        doc["audit"] = audit_keys
    path = tmp_path / "gw.toml"
    path.write_text(to_toml(doc))
    return path, config.load(path)


def recent_clock() -> FakeClock:
    """A clock at the real time: rows it stamps are not yet due for an anchor."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


async def append(store: SQLiteStore, n: int, clock: FakeClock | None = None) -> None:
    """``n`` audit events, as the core appends them."""
    trail = audit.AuditTrail(store, clock or recent_clock())
    for _ in range(n):
        i = (await store.audit_head())[0]
        await trail.record(audit.REQUESTED, actor=f"acme:{i}", identifiers=(f"h{i}.example.com",),
                           profile="default", request_id=f"order-{i}")


async def anchor(settings: Settings, store: SQLiteStore,
                 clock: FakeClock | None = None) -> None:
    """Run the gateway's anchor writer once: start (anchors the head) and stop."""
    writer = AnchorWriter(settings, store, clock or recent_clock())
    await writer.start()
    await writer.stop()


def sql(data_dir: Path, *statements: str) -> None:
    """Tamper with the database as someone with file access would."""
    with sqlite3.connect(data_dir / "gateway.db") as db:
        for statement in statements:
            db.execute(statement)


def rehash_all(data_dir: Path) -> None:
    """Recompute every row's prev_hash and hash: the chain is consistent again after an edit."""
    with sqlite3.connect(data_dir / "gateway.db") as db:
        db.row_factory = sqlite3.Row
        prev = audit_chain.GENESIS
        for row in db.execute("SELECT * FROM audit_events ORDER BY seq").fetchall():
            digest = audit_chain.link(prev, [row[c] for c in audit_chain.HASHED_COLUMNS])
            db.execute("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?",
                       (prev, digest, row["seq"]))
            prev = digest


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """``acme-gateway ARGV`` as an operator runs it: exit status and standard output."""
    capsys.readouterr()
    code = await asyncio.to_thread(cli.main, list(argv))
    return code, capsys.readouterr().out
