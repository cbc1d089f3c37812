"""``audit archive``: old rows move to a signed file, and ``audit verify`` still passes
across the cut (anchors included); the file checks against its signed cut."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.model.clock import FakeClock
from gateway.storage.sqlite import SQLiteStore
from tests.audit.support import anchor, append, recent_clock, run_cli, sql, write_config

Capsys = pytest.CaptureFixture[str]


async def _trail(tmp_path: Path, old: int, new: int) -> FakeClock:
    """``old`` rows written a year ago, then ``new`` rows now; the head anchored."""
    _, settings = write_config(tmp_path)
    now = recent_clock()
    store = SQLiteStore(tmp_path / "gateway.db")
    await store.open()
    try:
        await append(store, old, FakeClock(now.now() - timedelta(days=365)))
        await anchor(settings, store, now)  # an anchor inside the part that is archived
        await append(store, new, now)
        await anchor(settings, store, now)
    finally:
        await store.close()
    return now


async def _cli(capsys: Capsys, tmp_path: Path, *argv: str) -> tuple[int, str]:
    return await run_cli(capsys, "--config", str(tmp_path / "gw.toml"), "audit", *argv)


async def _archive(capsys: Capsys, tmp_path: Path, out: Path) -> tuple[int, str]:
    """Archive what is older than a month: the rows written a year ago."""
    a_month_ago = recent_clock().now() - timedelta(days=30)
    return await _cli(capsys, tmp_path, "archive", "--before",
                      a_month_ago.strftime("%Y-%m-%dT%H:%M:%S"), "--out", str(out))


def _rows_left(tmp_path: Path) -> list[int]:
    with sqlite3.connect(tmp_path / "gateway.db") as db:
        return [seq for (seq,) in db.execute("SELECT seq FROM audit_events ORDER BY seq")]


async def test_verify_passes_across_the_cut_and_the_archive_checks(
        capsys: Capsys, tmp_path: Path) -> None:
    await _trail(tmp_path, old=4, new=3)
    out = tmp_path / "audit-1.jsonl"
    code, text = await _archive(capsys, tmp_path, out)
    assert code == 0, text
    assert "archived rows 1 to 4" in text
    assert _rows_left(tmp_path) == [5, 6, 7]
    code, text = await _cli(capsys, tmp_path, "verify")
    assert code == 0, text
    assert "audit chain intact: 3 rows; head 7:" in text
    code, text = await _cli(capsys, tmp_path, "check-archive", str(out))
    assert (code, text.splitlines()[-1]) == (0, f"{out}: intact")


async def test_a_second_archive_continues_from_the_first_cut(capsys: Capsys,
                                                             tmp_path: Path) -> None:
    await _trail(tmp_path, old=4, new=3)
    assert (await _archive(capsys, tmp_path, tmp_path / "a1.jsonl"))[0] == 0
    code, text = await _archive(capsys, tmp_path, tmp_path / "a2.jsonl")
    assert code == 0 and "no audit row" in text  # the rest is recent
    assert not (tmp_path / "a2.jsonl").exists()
    assert (await _cli(capsys, tmp_path, "verify"))[0] == 0


async def test_the_newest_row_is_never_archived(capsys: Capsys, tmp_path: Path) -> None:
    await _trail(tmp_path, old=3, new=0)
    assert (await _archive(capsys, tmp_path, tmp_path / "a.jsonl"))[0] == 0
    assert _rows_left(tmp_path) == [3]  # the next append links to it
    assert (await _cli(capsys, tmp_path, "verify"))[0] == 0


async def test_rows_removed_after_the_cut_are_still_found(capsys: Capsys,
                                                          tmp_path: Path) -> None:
    await _trail(tmp_path, old=4, new=3)
    assert (await _archive(capsys, tmp_path, tmp_path / "a.jsonl"))[0] == 0
    sql(tmp_path, "DELETE FROM audit_events WHERE seq = 5")
    code, text = await _cli(capsys, tmp_path, "verify")
    assert code == 1
    assert "TAMPERED: row 5 removed (the sequence jumps from 4 to 6)" in text


def _forge_cut(tmp_path: Path) -> None:
    """Hide row 5's removal behind a cut moved to row 5 (its signature no longer holds)."""
    cuts = tmp_path / "audit-cuts.jsonl"
    cuts.write_text(json.dumps({**json.loads(cuts.read_text()), "seq": 5}) + "\n")


def _copy_anchor_as_cut(tmp_path: Path) -> None:
    """Make the first anchor (row 4, validly signed as an anchor) the cut log."""
    first_anchor = (tmp_path / "audit-anchors.jsonl").read_text().splitlines()[0]
    (tmp_path / "audit-cuts.jsonl").write_text(first_anchor + "\n")


FORGED_CUTS = [
    ("edited cut", True, _forge_cut, 5, "archive cut line 1 (row 5) has a bad signature"),
    ("anchor copied as a cut", False, _copy_anchor_as_cut, 4,
     "archive cut line 1 (row 4) has a bad signature"),
]


@pytest.mark.parametrize(("case", "archived", "forge", "through", "finding"), FORGED_CUTS,
                         ids=[c[0] for c in FORGED_CUTS])
async def test_a_forged_cut_does_not_hide_removed_rows(
        capsys: Capsys, tmp_path: Path, case: str, archived: bool,
        forge: Callable[[Path], None], through: int, finding: str) -> None:
    await _trail(tmp_path, old=4, new=3)
    if archived:
        assert (await _archive(capsys, tmp_path, tmp_path / "a.jsonl"))[0] == 0
    forge(tmp_path)
    sql(tmp_path, f"DELETE FROM audit_events WHERE seq <= {through}")
    code, text = await _cli(capsys, tmp_path, "verify")
    assert code == 1
    assert f"TAMPERED: {finding}" in text


async def test_an_edited_archive_file_is_reported(capsys: Capsys, tmp_path: Path) -> None:
    await _trail(tmp_path, old=4, new=3)
    out = tmp_path / "a.jsonl"
    assert (await _archive(capsys, tmp_path, out))[0] == 0
    out.write_text(out.read_text().replace("acme:1", "acme:9"))
    code, text = await _cli(capsys, tmp_path, "check-archive", str(out))
    assert code == 1
    assert "TAMPERED: row 2 was changed" in text


async def test_a_broken_chain_is_not_archived(capsys: Capsys, tmp_path: Path) -> None:
    await _trail(tmp_path, old=4, new=3)
    sql(tmp_path, "UPDATE audit_events SET actor = 'acme:mallory' WHERE seq = 2")
    code, text = await _archive(capsys, tmp_path, tmp_path / "a.jsonl")
    assert code == 1 and "TAMPERED: row 2 was changed" in text
    assert _rows_left(tmp_path) == [1, 2, 3, 4, 5, 6, 7]
    assert not (tmp_path / "a.jsonl").exists()
