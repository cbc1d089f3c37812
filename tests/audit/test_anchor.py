"""The anchor format: signatures, parsing, the key file, reading and appending the log."""

from __future__ import annotations

import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.audit_anchor import (
    Anchor,
    AnchorKey,
    append_line,
    check_files,
    last_line,
    line_digest,
    read_lines,
    unanchored,
)
from gateway.audit_chain import GENESIS
from gateway.audit_report import ChainCheck


@pytest.fixture
def key(tmp_path: Path) -> AnchorKey:
    return AnchorKey.load_or_create(tmp_path / "anchor.key")


def test_the_key_is_created_private_and_then_reused(tmp_path: Path, key: AnchorKey) -> None:
    assert stat.S_IMODE(key.path.stat().st_mode) == 0o600
    assert AnchorKey.load_or_create(key.path).fingerprint == key.fingerprint
    assert key.fingerprint.startswith("SHA256:") and len(key.fingerprint) == 50


def test_a_key_of_another_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ec.key"
    path.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    with pytest.raises(ValueError, match="not an Ed25519 key"):
        AnchorKey.load(path)


@pytest.mark.parametrize("change", [
    {"seq": 8}, {"hash": "0" * 64}, {"at": "2031-01-01T00:00:00Z"}, {"prev": "1" * 64},
    {"sig": "AAAA"}, {"sig": "not base64!"}])
def test_the_signature_covers_every_field(key: AnchorKey, change: dict[str, object]) -> None:
    anchor = key.sign(7, "a" * 64, "2030-01-01T00:00:00Z", GENESIS)
    assert key.signed(anchor)
    assert not key.signed(replace(anchor, **change))  # type: ignore[arg-type]


def test_a_line_parses_back_to_its_anchor(key: AnchorKey) -> None:
    anchor = key.sign(7, "a" * 64, "2030-01-01T00:00:00Z", GENESIS)
    assert Anchor.parse(anchor.line()) == anchor


@pytest.mark.parametrize("line", [
    "not json", "[]", '{"seq": 1}',
    '{"seq": "1", "hash": "h", "at": "t", "prev": "p", "sig": "s"}',
    '{"seq": true, "hash": "h", "at": "t", "prev": "p", "sig": "s"}',
    '{"seq": 1, "hash": "h", "at": "t", "prev": "p", "sig": "s", "more": 1}'])
def test_what_is_not_an_anchor(line: str) -> None:
    assert Anchor.parse(line) is None


@pytest.mark.parametrize(("content", "expected"), [
    (None, None), ("", None), ("one\n", "one"), ("one\ntwo\n", "two"), ("one\ntorn", "torn"),
    ("".join(f"line {i:05d}\n" for i in range(3000)), "line 02999")])
def test_last_line_reads_the_newest_line(tmp_path: Path, content: str | None,
                                         expected: str | None) -> None:
    path = tmp_path / "anchors.jsonl"
    if content is not None:
        path.write_text(content)
    assert last_line(path) == expected


def test_append_ends_a_torn_line_first(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "anchors.jsonl"
    append_line(path, "one")
    with path.open("a") as log:
        log.write('{"seq": 2, "ha')  # a crash in the middle of a write
    append_line(path, "three")
    assert read_lines(path) == ["one", '{"seq": 2, "ha', "three"]
    assert read_lines(tmp_path / "absent") is None


def test_line_digest_starts_from_genesis() -> None:
    assert line_digest(None) == GENESIS
    assert line_digest("x") != line_digest("y")


def test_check_files_without_key_or_log_finds_nothing(tmp_path: Path) -> None:
    result = check_files(tmp_path / "absent.key", tmp_path / "absent.jsonl")
    assert (result.pins, result.problems, result.unverified) == ([], [], [])
    assert not (tmp_path / "absent.key").exists()


def test_an_unreadable_key_leaves_the_anchors_unchecked(tmp_path: Path) -> None:
    (tmp_path / "bad.key").write_text("not a key")
    (tmp_path / "anchors.jsonl").write_text("{}\n")
    result = check_files(tmp_path / "bad.key", tmp_path / "anchors.jsonl")
    assert len(result.unverified) == 1 and "cannot be used" in result.unverified[0]


@pytest.mark.parametrize(("age_seconds", "anchored", "finding"), [
    (None, False, None), (100, False, None), (100, True, None),
    (121, False, "no signed anchor in"), (86400, True, "rows 5 to 9 (since ")])
def test_unanchored_after_two_intervals(tmp_path: Path, age_seconds: int | None,
                                        anchored: bool, finding: str | None) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    since = now - timedelta(seconds=age_seconds) if age_seconds is not None else None
    check = ChainCheck(head="9:" + "a" * 64, unpinned_seq=5, unpinned_at=since)
    found = unanchored(check, anchored, now, 60, tmp_path / "a.jsonl")
    assert (found or "").startswith(finding or "") and (found is None) == (finding is None)
