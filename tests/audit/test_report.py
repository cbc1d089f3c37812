"""``audit report``: counts by profile and requester, issuance time, violations, period."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from gateway import audit, audit_report, cli
from gateway.model.clock import FakeClock
from gateway.storage.sqlite import SQLiteStore
from tests.e2e.harness import to_toml


async def _events(store: SQLiteStore, clock: FakeClock) -> None:
    trail = audit.AuditTrail(store, clock)
    record = trail.record
    for i, (profile, actor, days, seconds) in enumerate(
            [("web", "acme:a", 90, 1.0), ("web", "acme:a", 90, 3.0), ("web", "acme:b", 90, 2.0),
             ("iot", "est:user:dev", 400, 10.0)]):
        await record(audit.REQUESTED, actor=actor, profile=profile, request_id=f"o{i}")
        await record(audit.ISSUED, actor=actor, profile=profile, request_id=f"o{i}",
                     extra={"serial": f"{i:x}", "validity_days": days, "duration_s": seconds})
    await record(audit.REQUESTED, actor="acme:b", profile="web", request_id="o9")
    await record(audit.FAILED, actor="acme:b", profile="web", result="caUnavailable")
    await record(audit.POLICY_REFUSED, actor="acme:c", profile="web", result="rejectedIdentifier")
    await record(audit.VALIDATED, actor="acme:b", result="incorrectResponse")
    await record(audit.VALIDATED, actor="acme:b")
    await record(audit.UNAUTHORIZED, actor="acme:x", result="unauthorized")
    await record(audit.APPROVED, actor="cli:bob", profile="iot",
                 extra={"requester": "est:user:dev"})
    await record(audit.APPROVED, actor="cli:bob", result="refused")
    clock.advance(86400 * 10)
    await record(audit.REQUESTED, actor="acme:late", profile="web")


async def test_report_of_a_period(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "gateway.db")
    await store.open()
    clock = FakeClock()
    try:
        await _events(store, clock)
        rows = [r async for r in audit_report.rows_of(store, None, clock.now())]
    finally:
        await store.close()
    report = audit_report.build_report(rows, None, clock.now(), 398)
    assert report["totals"] == {"requests": 5, "issued": 4, "failed": 1, "policy_refused": 1,
                                "validation_failures": 1, "unauthorized_attempts": 1,
                                "held_for_approval": 0, "approved": 1, "rejected": 0,
                                "revoked": 0}
    assert report["by_profile"]["web"] == {"requests": 4, "issued": 3, "failed": 1,
                                           "policy_refused": 1}
    assert report["by_requester"]["est:user:dev"] == {"requests": 1, "issued": 1, "approved": 1}
    assert report["issuance_time"] == {"count": 4, "mean_s": 4.0, "p95_s": 10.0}
    assert report["violations"] == [{"type": "validity_over_maximum", "serial": "3",
                                     "validity_days": 400, "maximum_days": 398,
                                     "profile": "iot", "request_id": "o3"}]
    text = audit_report.render_text(report)
    assert "validity_over_maximum: serial 3 valid 400 days (maximum 398)" in text
    assert "mean 4.0 s, p95 10.0 s" in text


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]
    assert audit_report.percentile(values, 95) == 19.0
    assert audit_report.percentile([5.0], 95) == 5.0


async def test_cli_report_json_with_period(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    store = SQLiteStore(tmp_path / "gateway.db")
    await store.open()
    try:
        await _events(store, FakeClock())
    finally:
        await store.close()
    config = tmp_path / "gw.toml"
    config.write_text(to_toml({"server": {"data_dir": str(tmp_path)},
                               "audit": {"max_validity_days": 500}}))
    argv = ["--config", str(config), "audit", "report", "--since", "2029-12-31",
            "--until", "2030-01-05", "--json"]
    assert await asyncio.to_thread(cli.main, argv) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert report["totals"]["requests"] == 5  # the late request is outside the period
    assert report["violations"] == []  # 400 days is within the configured 500
    assert report["since"] == "2029-12-31T00:00:00+00:00"


def test_issued_without_approval_is_a_violation() -> None:
    def row(event: str, request_id: str, extra: str = "{}") -> dict[str, Any]:
        return {"event": event, "actor": "acme:a", "profile": "manual", "result": "ok",
                "request_id": request_id, "extra": extra}

    held = '"policy": {"approval_required": true}'
    rows = [row("issued", "o1", f'{{"serial": "1", {held}}}'), row("approved", "o2"),
            row("issued", "o2", f'{{"serial": "2", {held}}}'),
            # Recorded before the rules were kept, or when the profile needed no approval
            # (whatever today's config says): not judged on approval.
            row("issued", "o3", '{"serial": "3"}'),
            row("issued", "o4", '{"serial": "4", "policy": {"approval_required": false}}')]
    report = audit_report.build_report(rows, None, None, 398)
    assert report["violations"] == [{"type": "issued_without_approval", "serial": "1",
                                     "profile": "manual", "request_id": "o1"}]
    assert "issued_without_approval: serial 1 no approval recorded" in \
        audit_report.render_text(report)
