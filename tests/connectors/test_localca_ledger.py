"""The local CA's SQLite ledger: issuance records committed on the loop, or in its thread."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.localca import store
from connectors.localca.store import CALedger

NOT_AFTER = datetime(2031, 1, 1, tzinfo=UTC)


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[CALedger]:
    """An open ledger on a new file, closed after the test."""
    opened = CALedger(tmp_path / "ca.db")
    await opened.open()
    yield opened
    await opened.close()


async def test_a_record_is_committed_before_record_issued_returns(ledger: CALedger) -> None:
    await ledger.record_issued(0x1234, NOT_AFTER, "req-1", b"der")
    other = sqlite3.connect(ledger.path)  # what another worker process would see
    try:
        rows = other.execute("SELECT serial, request_id FROM issued").fetchall()
    finally:
        other.close()
    assert rows == [("1234", "req-1")]
    assert await ledger.issued_for("req-1") == b"der"


async def test_a_held_write_lock_sends_the_record_to_the_thread_without_blocking_the_loop(
        ledger: CALedger) -> None:
    holder = sqlite3.connect(ledger.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another worker's write in progress
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        record = asyncio.ensure_future(ledger.record_issued(0xBEEF, NOT_AFTER, "req-2"))
        await asyncio.sleep(0.05)  # the loop runs on: the record waits in the thread
        assert not record.done()
        assert loop.time() - started < 1  # never the 5 s a lock wait on the loop would take
    finally:
        holder.execute("COMMIT")
        holder.close()
    await asyncio.wait_for(record, 5)
    assert (await ledger.status(0xBEEF)).state == "good"


async def test_the_thread_checkpoints_what_the_loop_commits(
        ledger: CALedger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "CHECKPOINT_EVERY", 3)
    ran: list[int] = []
    checkpoint = ledger._checkpoint

    async def counting() -> None:
        ran.append(1)
        await checkpoint()

    monkeypatch.setattr(ledger, "_checkpoint", counting)
    for serial in range(1, 8):
        await ledger.record_issued(serial, NOT_AFTER, f"req-{serial}")
        await asyncio.sleep(0.01)  # the loop's commits never yield; let a checkpoint run
    assert len(ran) == 2  # after the 3rd and the 6th record
    assert await ledger.counts() == (7, 0)


async def test_a_group_commit_queued_right_behind_a_checkpoint_succeeds(ledger: CALedger) -> None:
    """The checkpoint's result row must not keep its statement open on the thread's
    connection: the group commit that runs next in the same thread would fail with
    'SQL statements in progress' (seen with two workers under a burst)."""
    row = ("abcd", 1_900_000_000, "req-behind", None)
    await asyncio.gather(ledger._checkpoint(),
                         ledger._run(lambda: ledger._insert_issued([row])))
    assert await ledger.issued_for("req-behind") is None  # recorded, without a certificate
    other = sqlite3.connect(ledger.path)
    try:
        assert other.execute("SELECT serial FROM issued").fetchall() == [("abcd",)]
    finally:
        other.close()
