"""GET /admin/compliance: the report as JSON and CSV, judged by the recorded policy."""

from __future__ import annotations

import csv
import io

import pytest

from gateway.admin import render
from tests.acme.flow import issue
from tests.acme.support import eventually
from tests.acmeclient import make_csr
from tests.admin.conftest import AUTH
from tests.policy.support import PolicyGateway, finalize, ready_order


async def _approved_issuance(agw: PolicyGateway) -> None:
    c = await agw.client()
    order = await ready_order(c, ["held.example.com"], "manual")
    await finalize(c, order, make_csr(["held.example.com"])[0])
    order_id = order["url"].rsplit("/", 1)[1]
    resp = await agw.http.post(f"/admin/approvals/{order_id}/approve", headers=AUTH,
                               json={"approver": "carol"})
    assert resp.status == 200

    async def issued() -> bool:
        return bool((await c.post(order["url"]))[1]["status"] == "valid")

    await eventually(issued)


async def test_report_and_csv_export(agw: PolicyGateway) -> None:
    await issue(await agw.client(), ["plain.example.com"])
    await _approved_issuance(agw)
    issued = await agw.audit("issued")
    assert issued[0]["extra"].count('"approval_required":false') == 1  # rules recorded
    resp = await agw.http.get("/admin/compliance", headers=AUTH)
    body = await resp.json()
    rows = body["issuances"]
    assert [(r["profile"], r["approval_required"], r["approved_by"], r["verdict"])
            for r in rows] == [("default", False, "", "ok"), ("manual", True, "admin:carol", "ok")]
    assert all(r["policy_recorded"] for r in rows)
    resp = await agw.http.get("/admin/compliance", headers=AUTH, params={"format": "csv"})
    assert resp.content_type == "text/csv"
    table = list(csv.DictReader(io.StringIO(await resp.text())))
    assert [r["names"] for r in table] == ["plain.example.com", "held.example.com"]
    assert table[1]["approved_by"] == "admin:carol" and table[1]["verdict"] == "ok"


@pytest.mark.parametrize(("params", "complaint"), [
    ({"format": "xml"}, "format"), ({"since": "nope"}, "ISO date"),
    ({"since": "2026-02-01", "until": "2026-01-01"}, "later than"),
])
async def test_bad_report_requests_are_400(agw: PolicyGateway, params: dict[str, str],
                                           complaint: str) -> None:
    resp = await agw.http.get("/admin/compliance", headers=AUTH, params=params)
    assert resp.status == 400 and complaint in (await resp.json())["error"]


def test_csv_cells_never_start_a_formula() -> None:
    assert render._cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert render._cell(["-a", "b"]) == "'-a; b"
    assert render._cell(True) == "true" and render._cell(None) == ""
