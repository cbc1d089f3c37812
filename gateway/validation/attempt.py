"""What one validation attempt carries: its records, its current stage, and how it fails.

Checkers (http-01, dns-01, tls-alpn-01, CAA) raise :class:`ChallengeError`; the
engine decides from ``retriable`` whether another attempt may help. An error is
retriable when the network failed us (timeouts, refused connections, SERVFAIL),
never when the applicant's answer was simply wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.errors import ErrorKind


class ChallengeError(Exception):
    """A failed check, with the error kind and detail the client will see."""

    def __init__(self, kind: ErrorKind, detail: str, *, retriable: bool = False) -> None:
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind
        self.detail = detail
        self.retriable = retriable


@dataclass
class Attempt:
    """One attempt at a challenge: its number, its records and what it is doing now."""

    number: int
    records: list[dict[str, Any]] = field(default_factory=list)
    # What a timeout would interrupt, so that it can be reported precisely.
    stage_kind: ErrorKind = ErrorKind.CONNECTION
    stage: str = "starting"

    def enter(self, kind: ErrorKind, stage: str) -> None:
        """Note the step now running (e.g. resolving a name, reading a body)."""
        self.stage_kind = kind
        self.stage = stage

    def record(self, **fields: Any) -> dict[str, Any]:
        """Add a validation record for this attempt and return it for later additions."""
        entry: dict[str, Any] = {"attempt": self.number, **fields}
        self.records.append(entry)
        return entry

    def timeout_error(self, seconds: float) -> ChallengeError:
        """The error for an attempt that ran out of time in its current stage."""
        return ChallengeError(
            self.stage_kind, f"timed out after {seconds:g} s while {self.stage}", retriable=True
        )
