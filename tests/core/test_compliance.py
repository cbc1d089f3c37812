"""Compliance: each issuance judged by the policy recorded with it."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core.compliance import judge

ONE_YEAR = {"max_validity_days": 398, "profile_validity_days": 90}


@pytest.mark.parametrize(("extra", "approved_by", "found"), [
    ({"validity_days": 90, "policy": ONE_YEAR}, "", ()),
    ({"validity_days": 400, "policy": ONE_YEAR}, "", ("validity_over_maximum: 400 days > 398",)),
    # The maximum in force then, not today's (500 here).
    ({"validity_days": 450, "policy": {"max_validity_days": 500}}, "", ()),
    ({"validity_days": 120, "policy": ONE_YEAR}, "", ("validity_over_profile: 120 days > 90",)),
    ({"validity_days": 90, "policy": {"approval_required": True}}, "", (
        "issued_without_approval",)),
    ({"validity_days": 90, "policy": {"approval_required": True}}, "admin:carol", ()),
    # Recorded before rules were kept: only today's maximum applies.
    ({"validity_days": 90}, "", ()),
    ({"validity_days": 500}, "", ("validity_over_maximum: 500 days > 398",)),
])
def test_judged_by_the_recorded_policy(extra: dict[str, Any], approved_by: str,
                                       found: tuple[str, ...]) -> None:
    assert judge(extra, approved_by, 398) == found
