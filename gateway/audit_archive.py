"""``audit archive``: move old audit rows to a signed file; the chain stays verifiable.

The pruner never deletes audit rows. An operator who must bound the audit
table moves its oldest rows to an archive file instead:

1. the chain is verified first (with its anchors): a broken chain is not archived;
2. the rows from the previous cut up to the last one written before ``--before``
   (never the newest row: the next append links to it) go to a new file, one
   JSON object per line, after a header naming the first row and the hash it
   links to;
3. an :class:`ArchiveCut` ("rows up to N moved out; row N had hash H"), signed
   with the audit anchor key, ends the file and is appended to the cut log
   ``audit-cuts.jsonl`` beside the anchor log (chained line to line like it);
4. only then are the rows removed from the database, in short batches.

``audit verify`` reads the cut log: the newest validly signed cut is where the
chain in the database starts (its first row must link to the cut's hash), and
anchors at or before it name archived rows. The archive file proves itself:
its rows' hashes chain from the header's hash to the cut's, which the key signed.
A crash after step 3 leaves rows the cut already covers; the next archive
removes them first, and verify ignores them meanwhile.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from gateway import audit_anchor, audit_chain
from gateway.audit_anchor import Anchor, AnchorKey, append_line, last_line, line_digest
from gateway.audit_report import check_row, rows_of
from gateway.config import Settings
from gateway.model.store import Store

HEADER = "acme-gateway audit archive v1"
# Rows removed from the database per transaction.
DROP_BATCH = 1000


class ArchiveCut(Anchor):
    """A signed statement: rows up to ``seq`` were moved out; row ``seq`` had ``hash``."""

    WHAT: ClassVar[str] = "archive cut"


def cut_log_file(settings: Settings) -> Path:
    """The log of archive cuts, beside the anchor log."""
    return settings.anchor_log_file().with_name("audit-cuts.jsonl")


@dataclass(frozen=True)
class Start:
    """Where the chain in the database starts, and what is wrong with the cut log."""

    seq: int = 0
    hash: str = audit_chain.GENESIS
    problems: tuple[str, ...] = ()


def chain_start(settings: Settings) -> Start:
    """The newest validly signed cut (no cut log: the chain starts at row 1)."""
    lines = audit_anchor.read_lines(cut_log_file(settings))
    if not lines:
        return Start()
    try:
        key = AnchorKey.load(settings.anchor_key_file())
    except (OSError, ValueError) as exc:
        return Start(problems=(f"the archive cuts in {cut_log_file(settings)} cannot be "
                               f"checked: the anchor key cannot be used ({exc})",))
    check = audit_anchor.check_log(lines, key, ArchiveCut)
    newest = max(check.pins, key=lambda p: p.seq, default=None)
    if newest is None:
        return Start(problems=tuple(check.problems))
    return Start(newest.seq, newest.hash, tuple(check.problems))


@dataclass(frozen=True)
class Archived:
    """What one archive run moved out (``rows`` 0: nothing was old enough)."""

    rows: int
    first_seq: int = 0
    cut: Anchor | None = None


async def archive(settings: Settings, store: Store, start: Start, before: datetime,
                  out: Path, now: datetime) -> Archived:
    """Move the rows written before ``before`` (after ``start``) to ``out``; see the module."""
    await drop_archived(store, start.seq, start.hash)  # left by an interrupted archive
    head_seq, _ = await store.audit_head()
    rows = _rows_to_archive(store, start.seq, before, head_seq)
    part = out.with_name(out.name + ".part")
    last = await _write_rows(part, start, rows)
    if last is None:
        part.unlink()
        return Archived(0)
    key = AnchorKey.for_log(settings.anchor_key_file(), settings.anchor_log_file())
    log = cut_log_file(settings)
    cut = key.sign(last["seq"], last["hash"], now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   line_digest(last_line(log)), ArchiveCut)
    append_line(part, cut.line())
    os.replace(part, out)
    append_line(log, cut.line())
    await drop_archived(store, cut.seq, cut.hash)
    return Archived(last["seq"] - start.seq, start.seq + 1, cut)


async def _rows_to_archive(store: Store, after: int, before: datetime,
                           head_seq: int) -> AsyncIterator[dict[str, Any]]:
    """Rows in seq order from ``after``, up to the first one written at or after ``before``."""
    cutoff = before.timestamp()
    async for row in rows_of(store, after=after):
        if row["at"] >= cutoff or row["seq"] >= head_seq:
            return
        yield row


async def _write_rows(path: Path, start: Start,
                      rows: AsyncIterator[dict[str, Any]]) -> dict[str, Any] | None:
    """The header and the rows, flushed to disk; the last row written (None: no row)."""
    last = None
    with path.open("x") as out:
        out.write(json.dumps({"archive": HEADER, "first_seq": start.seq + 1,
                              "prev_hash": start.hash}) + "\n")
        async for row in rows:
            out.write(json.dumps(row, separators=(",", ":")) + "\n")
            last = row
        out.flush()
        os.fsync(out.fileno())
    return last


async def drop_archived(store: Store, through_seq: int, through_hash: str) -> int:
    """Remove the rows a cut covers from the database, a batch at a time."""
    dropped = 0
    while through_seq:
        batch = await store.drop_archived_audit(through_seq, through_hash, DROP_BATCH)
        dropped += batch
        if batch < DROP_BATCH:
            break
    return dropped


def check_archive(path: Path, key: AnchorKey) -> list[str]:
    """What is wrong with an archive file: its rows must chain from the header's hash
    to the hash of a cut signed by ``key``. An empty list: the file is what was cut."""
    try:
        return _check_archive(path, key)
    except (KeyError, TypeError, ValueError) as exc:  # an edited line, not one we wrote
        return [f"{path} is not an audit archive as written: {type(exc).__name__} {exc}"]


def _check_archive(path: Path, key: AnchorKey) -> list[str]:
    lines = [line for line in path.read_text().split("\n") if line]
    header = json.loads(lines[0]) if lines else None
    if not isinstance(header, dict) or header.get("archive") != HEADER or len(lines) < 3:
        return [f"{path} is not an audit archive (no {HEADER!r} header, or no rows)"]
    cut = ArchiveCut.parse(lines[-1])
    if cut is None or not key.signed(cut):
        return [f"{path}: its last line is not an archive cut signed by {key.fingerprint}"]
    found: list[str] = []
    prev_seq, prev_hash = header["first_seq"] - 1, header["prev_hash"]
    for line in lines[1:-1]:
        row = json.loads(line)
        found += check_row(row, prev_seq, prev_hash)
        prev_seq, prev_hash = row["seq"], row["hash"]
    if (prev_seq, prev_hash) != (cut.seq, cut.hash):
        found.append(f"{path}: the rows end at {prev_seq}:{prev_hash}, not at the signed cut "
                     f"{cut.seq}:{cut.hash}")
    return found

