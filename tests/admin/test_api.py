"""The admin HTTP API: bearer token, pending list, approve, reject."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway import keys
from gateway.app import create_app
from tests.acme.support import FakeValidator, eventually
from tests.acmeclient import make_csr
from tests.admin.conftest import AUTH, TOKEN
from tests.policy.support import PolicyGateway, finalize, ready_order, settings_for


async def _held(gw: PolicyGateway) -> tuple[Any, dict[str, Any], str]:
    c = await gw.client()
    order = await ready_order(c, ["api.example.com"], "manual")
    await finalize(c, order, make_csr(["api.example.com"])[0])
    return c, order, order["url"].rsplit("/", 1)[1]


async def test_token_is_required(agw: PolicyGateway) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        resp = await agw.http.get("/admin/approvals", headers=headers)
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    events = await agw.audit("unauthorized")
    assert len(events) == 3 and events[0]["actor"] == "admin:127.0.0.1"
    assert TOKEN not in str(events)


async def test_list_approve_and_reject(agw: PolicyGateway) -> None:
    c, order, first = await _held(agw)
    _, _, second = await _held(agw)
    resp = await agw.http.get("/admin/approvals", headers=AUTH)
    pending = (await resp.json())["pending"]
    assert [p["id"] for p in pending] == [first, second]
    assert pending[0]["identifiers"] == ["api.example.com"] and pending[0]["profile"] == "manual"
    resp = await agw.http.post(f"/admin/approvals/{first}/approve", headers=AUTH,
                               json={"approver": "carol"})
    assert resp.status == 200 and (await resp.json())["approval"] == "approved"

    async def issued() -> bool:
        return bool((await c.post(order["url"]))[1]["status"] == "valid")

    await eventually(issued)
    resp = await agw.http.post(f"/admin/approvals/{second}/reject", headers=AUTH, json={})
    assert resp.status == 400 and "reason" in (await resp.json())["error"]
    resp = await agw.http.post(f"/admin/approvals/{second}/reject", headers=AUTH,
                               json={"reason": "wrong team", "approver": "carol"})
    assert resp.status == 200 and (await resp.json())["status"] == "invalid"
    resp = await agw.http.post("/admin/approvals/nope/approve", headers=AUTH)
    assert resp.status == 404 and "not awaiting approval" in (await resp.json())["error"]
    decided = [e for e in await agw.audit() if e["event"] in ("approved", "rejected")]
    assert [(e["event"], e["actor"], e["result"]) for e in decided] == [
        ("approved", "admin:carol", "ok"), ("rejected", "admin:carol", "ok"),
        ("approved", "admin:api", "refused")]


async def test_no_token_no_admin_api(aiohttp_client: Any, tmp_path: Path) -> None:
    http = await aiohttp_client(create_app(settings_for(tmp_path), validator=FakeValidator()))
    resp = await http.get("/admin/approvals", headers=AUTH)
    assert resp.status == 404


async def test_operator_tasks_are_listed_and_closed(agw: PolicyGateway) -> None:
    tasks = agw.http.app[keys.CORE].issuance.tasks
    task = await tasks.revocation_task(ca="corp", serial="1f", reason=1, certificate_id="",
                                       instructions="revoke serial 1f in the console",
                                       actor="acme:x")
    resp = await agw.http.get("/admin/tasks", headers=AUTH)
    listed = (await resp.json())["tasks"]
    assert [(t["id"], t["serial"], t["instructions"]) for t in listed] == [
        (task.id, "1f", "revoke serial 1f in the console")]
    resp = await agw.http.post(f"/admin/tasks/{task.id}/done", headers=AUTH,
                               json={"approver": "bob", "note": "done in certsrv.msc"})
    assert resp.status == 200 and (await resp.json())["id"] == task.id
    assert (await (await agw.http.get("/admin/tasks", headers=AUTH)).json())["tasks"] == []
    resp = await agw.http.post(f"/admin/tasks/{task.id}/done", headers=AUTH)
    assert resp.status == 404
    [closed] = await agw.audit("operator_task_done")
    assert closed["actor"] == "admin:bob" and closed["detail"] == "done in certsrv.msc"


async def test_renewals_lists_windows_and_what_is_due(agw: PolicyGateway) -> None:
    c = await agw.client()
    order = await ready_order(c, ["due.example.com"], "default")
    resp, done = await finalize(c, order, make_csr(["due.example.com"])[0])
    assert done["status"] == "valid", done
    resp = await agw.http.get("/admin/renewals", headers=AUTH)
    [listed] = (await resp.json())["certificates"]
    assert listed["identifiers"] == ["due.example.com"] and listed["window_start"] > "2000"
    for query in ("?due=1", "?est=1"):
        resp = await agw.http.get(f"/admin/renewals{query}", headers=AUTH)
        assert (await resp.json())["certificates"] == []
