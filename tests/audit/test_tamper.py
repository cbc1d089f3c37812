"""The default ``acme-gateway audit verify`` against an attacker who edited the database.

Each case builds a trail of six rows, lets the gateway's anchor writer anchor
its head, tampers with the SQLite file directly, and runs ``audit verify`` as
an operator does (no option to remember).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import stat
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway import cli
from gateway.audit_anchor import AnchorKey, line_digest
from gateway.model.clock import FakeClock
from gateway.storage.sqlite import SQLiteStore
from tests.audit.support import (
    anchor,
    append,
    recent_clock,
    rehash_all,
    run_cli,
    sql,
    write_config,
)

Capsys = pytest.CaptureFixture[str]

TAMPERING: list[tuple[str, Callable[[Path], None], list[str]]] = [
    ("row edit",
     lambda d: sql(d, "UPDATE audit_events SET actor = 'acme:mallory' WHERE seq = 3"),
     ["row 3 was changed: its content no longer matches its hash "
      "(event 'requested', request 'order-2')"]),
    ("row delete",
     lambda d: sql(d, "DELETE FROM audit_events WHERE seq = 3"),
     ["row 3 removed (the sequence jumps from 2 to 4)",
      "row 4: its link to row 3 is broken — row 3 was changed and re-hashed, or removed"]),
    ("tail truncation",
     lambda d: sql(d, "DELETE FROM audit_events WHERE seq >= 5"),
     ["row 6 of signed anchor line 1 ({at}) is gone: rows were removed from the end "
      "(the chain now ends at row 4)"]),
    ("full re-hash",
     lambda d: (sql(d, "UPDATE audit_events SET actor = 'acme:mallory' WHERE seq = 2"),
                rehash_all(d)),
     ["row 6 differs from signed anchor line 1 ({at}): the row was rewritten or the "
      "whole chain re-hashed"]),
]


async def _anchored_trail(tmp_path: Path, rows: int = 6, **audit_keys: object) -> str:
    """A config and a trail of ``rows`` rows whose head is anchored; the anchor's time."""
    cfg, settings = write_config(tmp_path, **audit_keys)
    clock = recent_clock()
    store = SQLiteStore(tmp_path / "gateway.db")
    await store.open()
    try:
        await append(store, rows, clock)
        await anchor(settings, store, clock)
    finally:
        await store.close()
    return clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")


def _tampered(out: str) -> list[str]:
    return [line.removeprefix("TAMPERED: ") for line in out.splitlines()
            if line.startswith("TAMPERED: ")]


async def _verify(capsys: Capsys, tmp_path: Path, *extra: str) -> tuple[int, str]:
    return await run_cli(capsys, "--config", str(tmp_path / "gw.toml"), "audit", "verify",
                         *extra)


@pytest.mark.parametrize(("tamper", "findings"), [(t, f) for _, t, f in TAMPERING],
                         ids=[name for name, _, _ in TAMPERING])
async def test_default_verify_detects(tmp_path: Path, capsys: Capsys,
                                      tamper: Callable[[Path], None],
                                      findings: list[str]) -> None:
    at = await _anchored_trail(tmp_path)
    code, out = await _verify(capsys, tmp_path)
    fingerprint = AnchorKey.load(tmp_path / "audit-anchor.key").fingerprint
    assert code == 0, out
    assert f"anchors: 1 signed by {fingerprint} checked; the newest covers rows 1 to 6" in out
    assert "audit chain intact: 6 rows" in out
    tamper(tmp_path)
    code, out = await _verify(capsys, tmp_path)
    assert code == 1
    assert _tampered(out) == [f.format(at=at) for f in findings]
    assert "audit chain BROKEN" in out


async def test_removing_only_the_anchored_newest_row_is_detected(tmp_path: Path,
                                                                 capsys: Capsys) -> None:
    at = await _anchored_trail(tmp_path)
    sql(tmp_path, "DELETE FROM audit_events WHERE seq = 6")
    code, out = await _verify(capsys, tmp_path)
    assert code == 1 and _tampered(out) == [
        f"row 6 of signed anchor line 1 ({at}) is gone: rows were removed from the end "
        "(the chain now ends at row 5)"]


async def test_a_forged_anchor_line_is_detected(tmp_path: Path, capsys: Capsys) -> None:
    # The attacker cuts rows 5 and 6 and replaces the anchor with one of their own key.
    await _anchored_trail(tmp_path)
    sql(tmp_path, "DELETE FROM audit_events WHERE seq >= 5")
    with sqlite3.connect(tmp_path / "gateway.db") as db:
        (head,) = db.execute("SELECT hash FROM audit_events WHERE seq = 4").fetchone()
    forger = AnchorKey(Ed25519PrivateKey.generate(), tmp_path / "forged.key")
    forged = forger.sign(4, head, "2030-01-01T00:00:00Z", line_digest(None))
    (tmp_path / "audit-anchors.jsonl").write_text(forged.line() + "\n")
    code, out = await _verify(capsys, tmp_path)
    fingerprint = AnchorKey.load(tmp_path / "audit-anchor.key").fingerprint
    assert code == 1 and _tampered(out) == [
        f"anchor line 1 (row 4) has a bad signature: it was not signed by the anchor key "
        f"{fingerprint} (forged or edited)"]


async def _three_anchors(tmp_path: Path) -> list[str]:
    cfg, settings = write_config(tmp_path)
    store = SQLiteStore(tmp_path / "gateway.db")
    await store.open()
    try:
        for _ in range(3):
            await append(store, 2)
            await anchor(settings, store)
    finally:
        await store.close()
    return (tmp_path / "audit-anchors.jsonl").read_text().splitlines()


@pytest.mark.parametrize(("edit", "findings"), [
    (lambda lines: [lines[0], lines[2]],
     ["anchor line 2 does not follow line 1: anchor lines were removed, reordered or edited"]),
    (lambda lines: [lines[1], lines[2]],
     ["anchor line 1 does not start the log: lines were removed from its start"]),
    (lambda lines: [lines[0], lines[2], lines[1]],
     ["anchor line 2 does not follow line 1: anchor lines were removed, reordered or edited",
      "anchor line 3 does not follow line 2: anchor lines were removed, reordered or edited",
      "anchor line 3 goes back to row 4 after row 6: anchor lines were reordered"]),
    (lambda lines: [lines[0], "not json", lines[1], lines[2]],
     ["anchor line 2 is not an anchor: the anchor log was edited",
      "anchor line 3 does not follow line 2: anchor lines were removed, reordered or edited"]),
], ids=["middle line removed", "first line removed", "lines reordered", "line inserted"])
async def test_an_edited_anchor_log_is_detected(tmp_path: Path, capsys: Capsys,
                                                edit: Callable[[list[str]], list[str]],
                                                findings: list[str]) -> None:
    lines = await _three_anchors(tmp_path)
    assert [json.loads(line)["seq"] for line in lines] == [2, 4, 6]
    (tmp_path / "audit-anchors.jsonl").write_text("\n".join(edit(lines)) + "\n")
    code, out = await _verify(capsys, tmp_path)
    assert code == 1 and _tampered(out) == findings


async def test_a_trail_without_anchors_is_not_verified(tmp_path: Path, capsys: Capsys) -> None:
    write_config(tmp_path, anchor_interval_seconds=60)
    store = SQLiteStore(tmp_path / "gateway.db")
    await store.open()
    try:
        await append(store, 2)  # rows of just now: no anchor is due yet
        code, out = await _verify(capsys, tmp_path)
        assert code == 0 and "anchors: none checked (0 lines in the anchor log)" in out
        old = FakeClock(recent_clock().now() - timedelta(hours=3))
        sql(tmp_path, "DELETE FROM audit_events")
        await append(store, 2, old)
    finally:
        await store.close()
    code, out = await _verify(capsys, tmp_path)
    since = old.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert code == 1 and f"UNVERIFIED: no signed anchor in {tmp_path / 'audit-anchors.jsonl'}, " \
        f"yet the audit trail has rows since {since}: the anchor log was removed" in out
    assert "audit chain NOT VERIFIED: 2 rows" in out


async def test_a_missing_key_leaves_the_anchors_unchecked(tmp_path: Path,
                                                          capsys: Capsys) -> None:
    await _anchored_trail(tmp_path)
    (tmp_path / "audit-anchor.key").unlink()
    code, out = await _verify(capsys, tmp_path)
    assert code == 1 and f"UNVERIFIED: the anchor key {tmp_path / 'audit-anchor.key'} is " \
        "missing: the 1 anchors in" in out
    assert not (tmp_path / "audit-anchor.key").exists()  # verify never creates a key


async def test_a_replaced_key_differs_from_the_pinned_fingerprint(tmp_path: Path,
                                                                  capsys: Capsys) -> None:
    await _anchored_trail(tmp_path)
    pinned = AnchorKey.load(tmp_path / "audit-anchor.key").fingerprint
    write_config(tmp_path, anchor_key_fingerprint=pinned)
    assert (await _verify(capsys, tmp_path))[0] == 0
    # The attacker swaps in their own key and re-signs the log with it.
    (tmp_path / "audit-anchor.key").unlink()
    (tmp_path / "audit-anchors.jsonl").unlink()
    await _anchored_trail(tmp_path, rows=0, anchor_key_fingerprint=pinned)
    code, out = await _verify(capsys, tmp_path)
    new = AnchorKey.load(tmp_path / "audit-anchor.key").fingerprint
    assert code == 1 and _tampered(out)[0] == (
        f"the anchor key {tmp_path / 'audit-anchor.key'} is {new}, not the pinned {pinned}: "
        "the key was replaced")


async def test_a_copy_kept_elsewhere_catches_a_cut_log_tail(tmp_path: Path,
                                                            capsys: Capsys) -> None:
    lines = await _three_anchors(tmp_path)
    copy = tmp_path / "shipped-anchors.jsonl"
    shutil.copy(tmp_path / "audit-anchors.jsonl", copy)
    # Rows and the anchor lines that cover them cut together: the local files agree.
    sql(tmp_path, "DELETE FROM audit_events WHERE seq >= 5")
    (tmp_path / "audit-anchors.jsonl").write_text("\n".join(lines[:2]) + "\n")
    assert (await _verify(capsys, tmp_path))[0] == 0
    code, out = await _verify(capsys, tmp_path, "--anchors", str(copy))
    assert code == 1 and "is gone: rows were removed from the end (the chain now ends " \
        "at row 4)" in _tampered(out)[0]


async def test_anchor_key_prints_the_fingerprint_to_pin(tmp_path: Path, capsys: Capsys) -> None:
    cfg, _ = write_config(tmp_path)
    code, out = await run_cli(capsys, "--config", str(cfg), "audit", "anchor-key")
    key = AnchorKey.load(tmp_path / "audit-anchor.key")
    assert code == 0 and f"fingerprint: {key.fingerprint}" in out
    assert "BEGIN PUBLIC KEY" in out and "PRIVATE" not in out
    assert stat.S_IMODE((tmp_path / "audit-anchor.key").stat().st_mode) == 0o600
    code, again = await run_cli(capsys, "--config", str(cfg), "audit", "anchor-key")
    assert again == out


async def test_anchor_lines_cut_from_the_end_leave_old_rows_unverified(
        tmp_path: Path, capsys: Capsys) -> None:
    _, settings = write_config(tmp_path)
    old = FakeClock(recent_clock().now() - timedelta(hours=3))
    store = SQLiteStore(tmp_path / "gateway.db")
    await store.open()
    try:
        for _ in range(2):
            await append(store, 3, old)
            await anchor(settings, store, old)
    finally:
        await store.close()
    log = tmp_path / "audit-anchors.jsonl"
    log.write_text(log.read_text().splitlines()[0] + "\n")  # the newest anchor line is cut
    code, out = await _verify(capsys, tmp_path)
    since = old.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert code == 1 and _tampered(out) == []
    assert f"UNVERIFIED: rows 4 to 6 (since {since}) are older than two anchor intervals, yet " \
        f"no anchor covers them: lines were removed from the end of {log}" in out


async def test_a_missing_log_copy_is_an_error(tmp_path: Path, capsys: Capsys) -> None:
    await _anchored_trail(tmp_path)
    argv = ["--config", str(tmp_path / "gw.toml"), "audit", "verify", "--anchors",
            str(tmp_path / "typo.jsonl")]
    assert await asyncio.to_thread(cli.main, argv) == 1
    assert f"no anchor log at {tmp_path / 'typo.jsonl'}" in capsys.readouterr().err
