"""Signed anchors of the audit chain, kept outside the database.

The hash chain (``gateway.audit_chain``) shows a row changed in place, but not
rows cut from the end, nor a chain whose every hash was recomputed after an
edit: both leave a consistent chain. An anchor pins the chain's head as it
was: ``{"seq": N, "hash": H, "at": ..., "prev": ..., "sig": ...}``, one JSON
line appended to a log file beside (not inside) the database, signed with an
Ed25519 key the database does not hold. ``audit verify`` then requires the row
at every anchor's ``seq`` to exist and still carry the anchored hash.

Each line also carries ``prev``, the SHA-256 of the line before it, so lines
removed from the middle of the log or reordered show. What the anchors cannot
show is written in docs/audit.md: rows appended after the newest anchor, and
an attacker holding the key as well as both files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit_chain import GENESIS
from gateway.audit_report import ChainCheck, Pin

_TAIL_BLOCK = 4096


@dataclass(frozen=True)
class Anchor:
    """One signed statement: the audit chain's row ``seq`` had hash ``hash`` at ``at``."""

    seq: int
    hash: str
    at: str
    prev: str
    sig: str = ""
    # What the statement is, in its signed text and in findings (see ArchiveCut).
    WHAT: ClassVar[str] = "anchor"

    def signed_text(self) -> bytes:
        """The canonical text the signature covers (every field but ``sig``)."""
        return (f"acme-gateway audit {self.WHAT} v1\nseq {self.seq}\nhash {self.hash}\n"
                f"at {self.at}\nprev {self.prev}\n").encode()

    def line(self) -> str:
        """The anchor as one line of the anchor log (no newline)."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def parse(cls, line: str) -> Anchor | None:
        """The anchor of a log line, or None when the line is not one."""
        try:
            data: Any = json.loads(line)
        except ValueError:
            return None
        if not isinstance(data, dict) or set(data) != {"seq", "hash", "at", "prev", "sig"}:
            return None
        if type(data["seq"]) is not int or not all(
                isinstance(data[k], str) for k in ("hash", "at", "prev", "sig")):
            return None
        return cls(**data)


def line_digest(line: str | None) -> str:
    """What the next anchor's ``prev`` holds: the SHA-256 of this line (GENESIS for none)."""
    return hashlib.sha256(line.encode()).hexdigest() if line is not None else GENESIS


class AnchorKey:
    """The Ed25519 key that signs anchors; only its fingerprint is ever shown."""

    def __init__(self, private: Ed25519PrivateKey, path: Path) -> None:
        self._private = private
        self.path = path
        raw = private.public_key().public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw)
        self.public_raw = raw
        digest = base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
        self.fingerprint = f"SHA256:{digest}"

    @classmethod
    def load(cls, path: Path) -> AnchorKey:
        """Read the key; OSError when it cannot be read, ValueError when it is not one."""
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path} is not an unencrypted PEM private key ({exc}); "
                             "restore it from its backup") from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise ValueError(f"{path} holds a {type(private).__name__}, not an Ed25519 key; "
                             "restore the anchor key from its backup")
        return cls(private, path)

    @classmethod
    def load_or_create(cls, path: Path) -> AnchorKey:
        """Read the key, creating it (mode 0600) on first use."""
        if path.exists():
            return cls.load(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # created meanwhile by another process: use that one
            return cls.load(path)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        return cls(private, path)

    @classmethod
    def for_log(cls, path: Path, log_path: Path) -> AnchorKey:
        """The key that signs ``log_path``: created only while that log has no anchor yet.

        A new key beside an old log would make every earlier anchor look forged;
        a lost key is for the operator to restore or to retire with its log.
        """
        if not path.exists() and last_line(log_path) is not None:
            raise ValueError(f"the anchor log {log_path} has anchors but their key {path} is "
                             "missing: restore the key from its backup, or move the log aside "
                             "(keep it) to start a new key and log")
        return cls.load_or_create(path)

    def public_pem(self) -> str:
        """The public key, for an operator who checks anchors elsewhere."""
        return self._private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def sign(self, seq: int, head_hash: str, at: str, prev: str,
             kind: type[Anchor] = Anchor) -> Anchor:
        """A signed anchor (or another ``kind`` of statement) of the given head."""
        unsigned = kind(seq, head_hash, at, prev)
        sig = base64.b64encode(self._private.sign(unsigned.signed_text())).decode()
        return kind(seq, head_hash, at, prev, sig)

    def signed(self, anchor: Anchor) -> bool:
        """True when ``anchor`` carries this key's signature over its fields."""
        try:
            self._private.public_key().verify(base64.b64decode(anchor.sig, validate=True),
                                              anchor.signed_text())
        except (InvalidSignature, ValueError):
            return False
        return True


def last_line(path: Path) -> str | None:
    """The newest line of the anchor log (read from the end), or None for no line."""
    try:
        log = path.open("rb")
    except FileNotFoundError:
        return None
    with log:
        pos = log.seek(0, os.SEEK_END)
        block = b""
        while pos > 0:
            step = min(_TAIL_BLOCK, pos)
            pos -= step
            log.seek(pos)
            block = log.read(step) + block
            lines = block.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or pos == 0:
                return lines[-1].decode(errors="replace") if lines[-1] else None
    return None


def append_line(path: Path, line: str) -> None:
    """Append one line and flush it to disk; a torn last line (a crash) is ended first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as log:
        size = log.seek(0, os.SEEK_END)
        torn = False
        if size:
            log.seek(size - 1)
            torn = log.read(1) != b"\n"
        log.write((b"\n" if torn else b"") + line.encode() + b"\n")
        log.flush()
        os.fsync(log.fileno())


def read_lines(path: Path) -> list[str] | None:
    """Every line of the anchor log, or None when there is no log file."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return None
    return [line for line in text.split("\n") if line]


@dataclass
class AnchorCheck:
    """What the anchor log says: the anchors to pin, and what is wrong with the log itself."""

    fingerprint: str = ""
    lines: int = 0
    pins: list[Pin] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)


def _check_line(number: int, line: str, before: str | None, key: AnchorKey,
                newest: int, kind: type[Anchor]) -> tuple[Anchor | None, list[str]]:
    """One log line: the statement when its signature holds, and what is wrong with it."""
    what = kind.WHAT
    anchor = kind.parse(line)
    if anchor is None:
        return None, [f"{what} line {number} is not an {what}: the {what} log was edited"]
    found = []
    if anchor.prev != line_digest(before):
        found.append(f"{what} line {number} does not follow line {number - 1}: {what} lines "
                     "were removed, reordered or edited" if number > 1 else
                     f"{what} line 1 does not start the log: lines were removed from its start")
    if not key.signed(anchor):
        return None, [*found, f"{what} line {number} (row {anchor.seq}) has a bad signature: "
                      f"it was not signed by the anchor key {key.fingerprint} (forged or edited)"]
    if anchor.seq <= newest:
        found.append(f"{what} line {number} goes back to row {anchor.seq} after row {newest}: "
                     f"{what} lines were reordered")
    return anchor, found


def check_log(lines: list[str], key: AnchorKey, kind: type[Anchor] = Anchor) -> AnchorCheck:
    """Check every line of the anchor log (or a log of another ``kind``) against the key
    and the line before it."""
    result = AnchorCheck(fingerprint=key.fingerprint, lines=len(lines))
    before: str | None = None
    newest = 0
    for number, line in enumerate(lines, 1):
        anchor, found = _check_line(number, line, before, key, newest, kind)
        result.problems += found
        if anchor is not None:
            result.pins.append(Pin(anchor.seq, anchor.hash,
                                   f"signed {kind.WHAT} line {number} ({anchor.at})"))
            newest = max(newest, anchor.seq)
        before = line
    return result


def check_files(key_path: Path, log_path: Path, pinned_fingerprint: str = "") -> AnchorCheck:
    """Read the anchor key and log (never creating either) and check the log."""
    lines = read_lines(log_path) or []
    try:
        key = AnchorKey.load(key_path)
    except FileNotFoundError:
        if not lines:
            return AnchorCheck()
        return AnchorCheck(lines=len(lines), unverified=[
            f"the anchor key {key_path} is missing: the {len(lines)} anchors in {log_path} "
            "cannot be checked (restore the key from its backup)"])
    except (OSError, ValueError) as exc:
        return AnchorCheck(lines=len(lines), unverified=[
            f"the anchor key {key_path} cannot be used ({exc}): the anchors cannot be checked"])
    result = check_log(lines, key)
    if pinned_fingerprint and key.fingerprint != pinned_fingerprint:
        result.problems.insert(0, f"the anchor key {key_path} is {key.fingerprint}, not the "
                               f"pinned {pinned_fingerprint}: the key was replaced")
    return result


def unanchored(check: ChainCheck, anchored: bool, now: datetime, interval: float,
               log_path: Path) -> str | None:
    """The finding for rows that an anchor should cover by now but none does.

    Two intervals, not one: such a row may have been written just after a
    tick, and the next tick may still be writing its anchor.
    """
    since = check.unpinned_at
    if since is None or (now - since).total_seconds() <= 2 * interval:
        return None
    when = f"{since:%Y-%m-%dT%H:%M:%SZ}"
    if not anchored:
        return (f"no signed anchor in {log_path}, yet the audit trail has rows since {when}: "
                "the anchor log was removed, or the gateway has not served since those rows "
                "were written (it anchors on start); rows removed from the end or a "
                "re-hashed chain cannot be ruled out")
    return (f"rows {check.unpinned_seq} to {check.last_seq} (since {when}) are older than two "
            f"anchor intervals, yet no anchor covers them: lines were removed from the end of "
            f"{log_path}, or the gateway has not anchored since (it anchors on start; see its "
            "log)")
