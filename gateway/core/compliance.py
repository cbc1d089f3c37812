"""Compliance: each issuance judged by the policy in force when it was issued.

At issuance the core records the profile's rules in the ``issued`` audit
event (``extra["policy"]``, see :func:`policy_record`), inside the same
hash-chained row as the issuance itself. The report reads them back, so a
rule tightened later (approval turned on, a shorter maximum validity) does
not turn earlier issuances into violations. Issuances recorded before rules
were kept are judged only by what does not depend on them (the gateway-wide
maximum validity of today) and marked ``policy_recorded: false``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway import audit, audit_report
from gateway.config import ProfileSettings
from gateway.model.store import Store

# Bump when the recorded rules change meaning, so a reader knows which it holds.
POLICY_VERSION = 1


def policy_record(profile: ProfileSettings, max_validity_days: int) -> dict[str, Any]:
    """The rules an issuance is judged by, as recorded with it."""
    return {"version": POLICY_VERSION, "profile_validity_days": profile.validity.days,
            "max_validity_days": max_validity_days,
            "approval_required": profile.approval_required,
            "allow_wildcards": profile.allow_wildcards, "allow_ip": profile.allow_ip,
            "key_types": list(profile.key_types), "min_rsa_bits": profile.min_rsa_bits,
            "min_ec_bits": profile.min_ec_bits}


@dataclass(frozen=True)
class IssuanceVerdict:
    """One issuance and what the policy recorded with it says about it."""

    issued_at: datetime
    serial: str
    profile: str
    ca: str
    requester: str
    names: tuple[str, ...]
    validity_days: float | None
    policy_recorded: bool
    approval_required: bool
    approved_by: str
    violations: tuple[str, ...]

    @property
    def verdict(self) -> str:
        """``ok`` or ``violation``."""
        return "violation" if self.violations else "ok"


def judge(extra: dict[str, Any], approved_by: str, today_max_days: int) -> tuple[str, ...]:
    """The violations of one issuance, by its recorded policy (today's maximum without one)."""
    policy = audit.recorded_policy(extra) or {}
    found = []
    limit = policy.get("max_validity_days", today_max_days)
    days = extra.get("validity_days")
    if isinstance(days, int | float) and isinstance(limit, int | float):
        if days > limit:
            found.append(f"validity_over_maximum: {days} days > {limit}")
        elif days > policy.get("profile_validity_days", days) + 1:  # +1: clock skew margin
            found.append(f"validity_over_profile: {days} days > "
                         f"{policy['profile_validity_days']}")
    if policy.get("approval_required") and not approved_by:
        found.append("issued_without_approval")
    return tuple(found)


async def _approver(store: Store, request_id: str) -> str:
    rows = await store.audit_of_request(request_id, 200)
    return next((r["actor"] for r in rows
                 if r["event"] == audit.APPROVED and r["result"] == "ok"), "")


async def issuances(store: Store, since: datetime | None, until: datetime | None,
                    today_max_days: int) -> AsyncIterator[IssuanceVerdict]:
    """Every issuance of the period, oldest first, with its verdict."""
    async for row in audit_report.rows_of(store, since, until):
        if row["event"] != audit.ISSUED:
            continue
        extra = json.loads(row["extra"])
        policy = audit.recorded_policy(extra)
        held = bool(policy and policy.get("approval_required"))
        approved_by = await _approver(store, row["request_id"]) if held else ""
        yield IssuanceVerdict(
            issued_at=datetime.fromtimestamp(row["at"], UTC), serial=str(extra.get("serial")),
            profile=row["profile"], ca=row["ca"], requester=row["actor"],
            names=tuple(json.loads(row["identifiers"])),
            validity_days=extra.get("validity_days"), policy_recorded=policy is not None,
            approval_required=held, approved_by=approved_by,
            violations=judge(extra, approved_by, today_max_days))
