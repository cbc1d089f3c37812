"""The audit trail's hash chain: appends inside store units, and verify naming tampered rows."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway import audit, audit_report, cli
from gateway.model.clock import FakeClock
from gateway.model.records import Job
from gateway.model.store import Insert, Update
from gateway.storage.sqlite import SQLiteStore
from tests.audit import support
from tests.e2e.harness import to_toml


@pytest.fixture
async def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "gateway.db")
    await s.open()
    yield s  # type: ignore[misc]
    await s.close()


async def _append(store: SQLiteStore, n: int) -> None:
    trail = audit.AuditTrail(store, FakeClock())
    for i in range(n):
        await trail.record(audit.REQUESTED, actor=f"acme:{i}", identifiers=(f"h{i}.example.com",),
                           profile="default", request_id=f"order-{i}")


def _sql(tmp_path: Path, statement: str) -> None:
    """Tamper with the database as someone with file access would."""
    with sqlite3.connect(tmp_path / "gateway.db") as db:
        db.execute(statement)


async def test_intact_chain(store: SQLiteStore) -> None:
    await _append(store, 5)
    result = await audit_report.verify(store)
    assert result.ok and result.rows == 5 and result.head.startswith("5:")


async def test_edited_row_is_named(store: SQLiteStore, tmp_path: Path) -> None:
    await _append(store, 5)
    _sql(tmp_path, "UPDATE audit_events SET actor = 'acme:someone-else' WHERE seq = 3")
    result = await audit_report.verify(store)
    assert result.problems == ["row 3 was changed: its content no longer matches its hash "
                               "(event 'requested', request 'order-2')"]


async def test_edited_and_rehashed_row_breaks_the_next_link(store: SQLiteStore,
                                                           tmp_path: Path) -> None:
    await _append(store, 5)
    _sql(tmp_path, "UPDATE audit_events SET hash = 'f' || substr(hash, 2) WHERE seq = 2")
    result = await audit_report.verify(store)
    assert result.problems == [
        "row 2 was changed: its content no longer matches its hash "
        "(event 'requested', request 'order-1')",
        "row 3: its link to row 2 is broken — row 2 was changed and re-hashed, or removed"]


async def test_removed_rows_are_named(store: SQLiteStore, tmp_path: Path) -> None:
    await _append(store, 6)
    head = (await audit_report.verify(store)).head
    _sql(tmp_path, "DELETE FROM audit_events WHERE seq = 3")
    problems = (await audit_report.verify(store)).problems
    assert problems[0] == "row 3 removed (the sequence jumps from 2 to 4)"
    _sql(tmp_path, "DELETE FROM audit_events WHERE seq >= 5")
    problems = (await audit_report.verify(store, [audit_report.kept_head(head)])).problems
    assert problems[-1] == ("row 6 of the anchor you kept is gone: rows were removed from "
                            "the end (the chain now ends at row 4)")


async def test_a_kept_head_of_an_empty_chain_holds(store: SQLiteStore) -> None:
    empty = (await audit_report.verify(store)).head
    assert (await audit_report.verify(store, [audit_report.kept_head(empty)])).ok
    with pytest.raises(ValueError, match="is not SEQ:HASH"):
        audit_report.kept_head("head")


async def test_concurrent_units_and_rolled_back_units_keep_the_chain(
        store: SQLiteStore) -> None:
    trail = audit.AuditTrail(store, FakeClock())
    job = Job(id="j1", order_id="o1", run_at=datetime(2030, 1, 1, tzinfo=UTC))
    await store.apply([Insert(job)])
    # A unit whose compare-and-set fails rolls back its audit row too.
    stale = Update(Job(id="missing", order_id="o2"))
    ops = [[trail.event(audit.ISSUED, request_id=f"r{i}")] for i in range(50)]
    results = await asyncio.gather(*(store.apply(o) for o in ops),
                                   store.apply([stale, trail.event(audit.FAILED)]))
    assert results[-1] is False
    result = await audit_report.verify(store)
    assert result.ok and result.rows == 50


async def test_two_writers_on_one_file_share_the_chain(store: SQLiteStore,
                                                       tmp_path: Path) -> None:
    other = SQLiteStore(tmp_path / "gateway.db")  # e.g. the CLI while the gateway serves
    await other.open()
    try:
        for _ in range(3):
            await _append(store, 2)
            await _append(other, 2)
    finally:
        await other.close()
    result = await audit_report.verify(store)
    assert result.ok and result.rows == 12


async def test_cli_verify_detects_an_edited_row(store: SQLiteStore, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    await support.append(store, 4)  # rows of now: no anchor is due yet
    config = tmp_path / "gw.toml"
    config.write_text(to_toml({"server": {"data_dir": str(tmp_path)}}))
    assert await asyncio.to_thread(cli.main, ["--config", str(config), "audit", "verify"]) == 0
    assert "audit chain intact: 4 rows" in capsys.readouterr().out
    _sql(tmp_path, "UPDATE audit_events SET result = 'ok', detail = 'nothing' WHERE seq = 2")
    assert await asyncio.to_thread(cli.main, ["--config", str(config), "audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert "TAMPERED: row 2 was changed" in out and "audit chain BROKEN" in out
