"""``audit verify`` and ``audit report``: read the audit trail back.

``verify`` recomputes the hash chain row by row and names the first rows that
are not what was written: a changed row (its content no longer matches its
hash), a row whose link to its predecessor is broken (the predecessor was
changed and re-hashed, or removed), and gaps in the sequence (removed rows).
Removing rows at the *end*, or recomputing every hash after an edit, leaves a
consistent chain: pinned rows (``Pin``) catch that. The signed anchors of
``gateway.audit_anchor`` are pinned by default; a head an operator kept by hand
(``--anchor SEQ:HASH``) can be added.

``report`` summarises a period for compliance: requests, issued, failed,
policy refusals, validation failures, unauthorized attempts, per profile and
per requester, issuance time (mean, p95) and violations: a validity above the
configured maximum (398 days by default, the CA/Browser Forum limit), and a
certificate issued for a profile that requires approval (by the current
config) without an ``approved`` event for its request in the period.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway import audit, audit_chain
from gateway.model.store import Store

PAGE = 2000


async def rows_of(store: Store, since: datetime | None = None,
                  until: datetime | None = None, after: int = 0) -> AsyncIterator[dict[str, Any]]:
    """Every audit row (in the period, after row ``after``), in sequence order, page by page."""
    while True:
        page = await store.audit_rows(after, PAGE, since, until)
        for row in page:
            yield row
        if len(page) < PAGE:
            return
        after = page[-1]["seq"]


@dataclass(frozen=True)
class Pin:
    """A row the chain must still hold with this hash: a signed anchor or a head kept by hand."""

    seq: int
    hash: str
    source: str  # how findings name it, e.g. "signed anchor line 3 (2026-12-01T10:00:00Z)"


@dataclass
class ChainCheck:
    """The outcome of ``audit verify``."""

    rows: int = 0
    head: str = f"0:{audit_chain.GENESIS}"
    problems: list[str] = field(default_factory=list)
    # Findings that do not show tampering but leave it open (e.g. no anchor to check against).
    unverified: list[str] = field(default_factory=list)
    # The first row after the newest pinned one, and when it was written: no pin protects
    # it or any row after it.
    unpinned_seq: int = 0
    unpinned_at: datetime | None = None

    @property
    def ok(self) -> bool:
        """True when no row was found changed or missing and nothing was left unchecked."""
        return not self.problems and not self.unverified

    @property
    def last_seq(self) -> int:
        """The seq the chain now ends at."""
        return int(self.head.partition(":")[0])


def check_row(row: dict[str, Any], prev_seq: int, prev_hash: str) -> list[str]:
    """What is wrong with one row, given the row before it."""
    seq = row["seq"]
    found = []
    if seq != prev_seq + 1:
        missing = f"row {prev_seq + 1}" if seq == prev_seq + 2 else \
            f"rows {prev_seq + 1} to {seq - 1}"
        found.append(f"{missing} removed (the sequence jumps from {prev_seq} to {seq})")
    if row["prev_hash"] != prev_hash:
        found.append(f"row {seq}: its link to row {seq - 1} is broken — row {seq - 1} was "
                     "changed and re-hashed, or removed")
    values = [row[c] for c in audit_chain.HASHED_COLUMNS]
    if audit_chain.link(row["prev_hash"], values) != row["hash"]:
        found.append(f"row {seq} was changed: its content no longer matches its hash "
                     f"(event {row['event']!r}, request {row['request_id']!r})")
    return found


def check_pin(pin: Pin, row_hash: str | None, last_seq: int) -> str | None:
    """What is wrong with one pinned row: ``row_hash`` is its hash now (None: no such row)."""
    if row_hash == pin.hash:
        return None
    if row_hash is not None:
        return (f"row {pin.seq} differs from {pin.source}: the row was rewritten or the "
                "whole chain re-hashed")
    if pin.seq > last_seq:
        return (f"row {pin.seq} of {pin.source} is gone: rows were removed from the end "
                f"(the chain now ends at row {last_seq})")
    return f"row {pin.seq} of {pin.source} is gone: it was removed"


async def verify(store: Store, pins: Iterable[Pin] = (),
                 start: tuple[int, str] = (0, audit_chain.GENESIS)) -> ChainCheck:
    """Recompute the whole chain; every pinned row must still be in it with its hash.

    ``start`` is where the chain in the database begins: the seq and hash of the
    last row moved to an archive (``gateway.audit_archive``); pins at or before
    it are in the archive, not here.
    """
    result = ChainCheck(head=f"{start[0]}:{start[1]}")
    pinned: defaultdict[int, list[Pin]] = defaultdict(list)
    for pin in pins:
        if pin.seq > start[0]:
            pinned[pin.seq].append(pin)
    found: dict[int, str] = {start[0]: start[1]}  # the head of an empty chain
    newest_pin = max(pinned, default=start[0])
    prev_seq, prev_hash = start
    async for row in rows_of(store, after=start[0]):
        result.problems += check_row(row, prev_seq, prev_hash)
        if row["seq"] in pinned:
            found[row["seq"]] = row["hash"]
        if result.unpinned_at is None and row["seq"] > newest_pin:
            result.unpinned_seq = row["seq"]
            result.unpinned_at = datetime.fromtimestamp(row["at"], UTC)
        prev_seq, prev_hash = row["seq"], row["hash"]
        result.rows += 1
    result.head = f"{prev_seq}:{prev_hash}"
    for seq in sorted(pinned):
        for pin in pinned[seq]:
            problem = check_pin(pin, found.get(seq), prev_seq)
            if problem:
                result.problems.append(problem)
    return result


def kept_head(text: str) -> Pin:
    """The ``--anchor SEQ:HASH`` an operator kept from an earlier verify."""
    seq, _, head_hash = text.partition(":")
    if not seq.isdigit() or not head_hash:
        raise ValueError(f"{text!r} is not SEQ:HASH as printed by `audit verify`")
    return Pin(int(seq), head_hash, "the anchor you kept")


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile of ``values`` (which must not be empty)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


class _Tally:
    """Counters of one report."""

    def __init__(self) -> None:
        self.totals: Counter[str] = Counter()
        self.by_profile: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.by_requester: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.durations: list[float] = []
        self.violations: list[dict[str, Any]] = []
        self.approved: set[str] = set()
        self.issued_held: list[dict[str, Any]] = []  # issued in profiles needing approval


# event type → report counter name (only these are counted per profile and requester)
COUNTED = {audit.REQUESTED: "requests", audit.ISSUED: "issued", audit.FAILED: "failed",
           audit.POLICY_REFUSED: "policy_refused", audit.UNAUTHORIZED: "unauthorized_attempts",
           audit.APPROVED: "approved", audit.REJECTED: "rejected", audit.REVOKED: "revoked",
           audit.APPROVAL_PENDING: "held_for_approval", audit.RATE_LIMITED: "rate_limited"}


def _count(tally: _Tally, row: dict[str, Any], max_validity_days: int) -> None:
    event, extra = row["event"], json.loads(row["extra"])
    if event == audit.VALIDATED:
        if row["result"] != "ok":
            tally.totals["validation_failures"] += 1
        return
    name = COUNTED.get(event)
    if name is None or row["result"] == "refused":
        return
    tally.totals[name] += 1
    if event == audit.APPROVED:
        tally.approved.add(row["request_id"])
    if event == audit.ISSUED and _held(extra):
        tally.issued_held.append({"type": "issued_without_approval",
                                  "serial": extra.get("serial"), "profile": row["profile"],
                                  "request_id": row["request_id"]})
    requester = extra.get("requester", row["actor"]) if event in (audit.APPROVED,
                                                                   audit.REJECTED) else row["actor"]
    if row["profile"]:
        tally.by_profile[row["profile"]][name] += 1
    tally.by_requester[requester or "?"][name] += 1
    if event == audit.ISSUED:
        _issued(tally, row, extra, max_validity_days)


def _held(extra: dict[str, Any]) -> bool:
    """Whether an issuance needed an approval, as recorded with it.

    Issuances recorded before the rules were kept are not judged on approval:
    today's config says nothing about the day they were issued.
    """
    policy = audit.recorded_policy(extra)
    return bool(policy and policy.get("approval_required"))


def _issued(tally: _Tally, row: dict[str, Any], extra: dict[str, Any], limit: int) -> None:
    if isinstance(extra.get("duration_s"), int | float):
        tally.durations.append(float(extra["duration_s"]))
    days = extra.get("validity_days")
    # The maximum in force at issuance, when it was recorded (gateway.core.compliance).
    limit = (audit.recorded_policy(extra) or {}).get("max_validity_days", limit)
    if isinstance(days, int | float) and days > limit:
        tally.violations.append({"type": "validity_over_maximum", "serial": extra.get("serial"),
                                 "validity_days": days, "maximum_days": limit,
                                 "profile": row["profile"], "request_id": row["request_id"]})


def build_report(rows: Iterable[dict[str, Any]], since: datetime | None, until: datetime | None,
                 max_validity_days: int) -> dict[str, Any]:
    """The report of a period, as a JSON-ready dict."""
    tally = _Tally()
    for row in rows:
        _count(tally, row, max_validity_days)
    tally.violations += [v for v in tally.issued_held if v["request_id"] not in tally.approved]
    timing: dict[str, Any] = {"count": len(tally.durations), "mean_s": None, "p95_s": None}
    if tally.durations:
        timing["mean_s"] = round(sum(tally.durations) / len(tally.durations), 3)
        timing["p95_s"] = round(percentile(tally.durations, 95), 3)
    totals = {name: tally.totals.get(name, 0) for name in
              ("requests", "issued", "failed", "policy_refused", "validation_failures",
               "unauthorized_attempts", "held_for_approval", "approved", "rejected", "revoked")}
    return {"since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "totals": totals,
            "by_profile": {k: dict(v) for k, v in sorted(tally.by_profile.items())},
            "by_requester": {k: dict(v) for k, v in sorted(tally.by_requester.items())},
            "issuance_time": timing, "violations": tally.violations}


def render_text(report: dict[str, Any]) -> str:
    """The report for a terminal."""
    lines = [f"Audit report {report['since'] or 'start'} .. {report['until'] or 'now'}", ""]
    lines += [f"  {name.replace('_', ' '):<24}{value}" for name, value in report["totals"].items()]
    timing = report["issuance_time"]
    if timing["count"]:
        lines.append(f"  {'issuance time':<24}mean {timing['mean_s']} s, p95 {timing['p95_s']} s "
                     f"({timing['count']} certificates)")
    for title in ("by_profile", "by_requester"):
        lines += ["", f"{title.replace('_', ' ').capitalize()}:"]
        for key, counts in report[title].items():
            shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(counts.items()))
            lines.append(f"  {key:<32}{shown}")
    lines += ["", f"Violations: {len(report['violations']) or 'none'}"]
    for v in report["violations"]:
        what = f"valid {v['validity_days']} days (maximum {v['maximum_days']}), " \
            if "validity_days" in v else "no approval recorded, "
        lines.append(f"  {v['type']}: serial {v['serial']} {what}profile {v['profile']}, "
                     f"request {v['request_id']}")
    return "\n".join(lines)
