"""The admin API's certificate inventory and accounts: search, show, revoke, deactivate."""

from __future__ import annotations

from typing import Any

import pytest

from tests.acme.flow import issue
from tests.admin.conftest import AUTH
from tests.policy.support import PolicyGateway


async def _issued(agw: PolicyGateway, names: list[str]) -> tuple[Any, dict[str, Any]]:
    c = await agw.client()
    _, order, _ = await issue(c, names)
    return c, order


async def _search(agw: PolicyGateway, **params: str) -> list[dict[str, Any]]:
    resp = await agw.http.get("/admin/certificates", headers=AUTH, params=params)
    assert resp.status == 200, await resp.text()
    return list((await resp.json())["certificates"])


async def test_search_by_name_serial_account_and_state(agw: PolicyGateway) -> None:
    c, _ = await _issued(agw, ["shop.example.com", "www.shop.example.com"])
    await _issued(agw, ["mail.example.org"])
    assert [x["names"] for x in await _search(agw, name="SHOP")] == [
        ["shop.example.com", "www.shop.example.com"]]
    assert len(await _search(agw)) == 2
    assert await _search(agw, name="type") == []  # the stored JSON's keys are not names
    assert await _search(agw, name="%") == []  # LIKE wildcards are taken literally
    mail = (await _search(agw, name="mail"))[0]
    assert mail["state"] == "valid" and mail["profile"] == "default" and mail["ca"] == "local"
    colons = ":".join(mail["serial"][i:i + 2] for i in range(0, len(mail["serial"]), 2))
    assert [x["id"] for x in await _search(agw, serial=colons.upper())] == [mail["id"]]
    assert [x["id"] for x in await _search(agw, account=mail["account"])] == [mail["id"]]
    assert len(await _search(agw, expires_within_days="3650", state="valid")) == 2
    assert await _search(agw, expires_within_days="0") == []
    assert await _search(agw, state="revoked") == []


@pytest.mark.parametrize(("params", "complaint"), [
    ({"state": "bogus"}, "state"), ({"limit": "0"}, "limit"), ({"limit": "abc"}, "limit"),
    ({"expires_after": "yesterday"}, "ISO date"), ({"colour": "red"}, "unknown search field"),
    ({"name": "x" * 300}, "longer than"), ({"serial": "xyz"}, "not hexadecimal"),
])
async def test_bad_searches_are_400(agw: PolicyGateway, params: dict[str, str],
                                    complaint: str) -> None:
    resp = await agw.http.get("/admin/certificates", headers=AUTH, params=params)
    assert resp.status == 400 and complaint in (await resp.json())["error"]


async def test_show_then_revoke_with_reason(agw: PolicyGateway) -> None:
    await _issued(agw, ["vpn.example.com"])
    found = (await _search(agw, name="vpn"))[0]
    resp = await agw.http.get(f"/admin/certificates/{found['serial']}", headers=AUTH)
    shown = await resp.json()
    assert shown["id"] == found["id"] and shown["chain_pem"].startswith("-----BEGIN CERT")
    assert [h["event"] for h in shown["history"]][-1] == "issued"
    resp = await agw.http.post(f"/admin/certificates/{found['id']}/revoke", headers=AUTH,
                               json={"reason": "keyCompromise", "approver": "dave"})
    assert resp.status == 200 and (await resp.json())["revocation_reason"] == 1
    resp = await agw.http.post(f"/admin/certificates/{found['id']}/revoke", headers=AUTH)
    assert resp.status == 409 and "already revoked" in (await resp.json())["error"]
    assert [x["id"] for x in await _search(agw, state="revoked")] == [found["id"]]
    revoked = (await agw.audit("revoked"))[-1]
    assert revoked["actor"] == "admin:dave" and revoked["request_id"] == found["order"]


@pytest.mark.parametrize(("body", "status"), [
    ({"reason": "cACompromise"}, 400), ({"reason": 7}, 400), ({"reason": True}, 400),
    ([1], 400),
])
async def test_revoke_refuses_bad_reasons(agw: PolicyGateway, body: Any, status: int) -> None:
    await _issued(agw, ["r.example.com"])
    cert = (await _search(agw))[0]
    resp = await agw.http.post(f"/admin/certificates/{cert['id']}/revoke", headers=AUTH,
                               json=body)
    assert resp.status == status
    assert (await _search(agw, state="valid"))[0]["id"] == cert["id"]


async def test_unknown_certificate_is_404(agw: PolicyGateway) -> None:
    for path in ("/admin/certificates/nope", "/admin/certificates/abc123"):
        assert (await agw.http.get(path, headers=AUTH)).status == 404
    assert (await agw.http.post("/admin/certificates/nope/revoke", headers=AUTH)).status == 404


async def test_accounts_list_and_deactivate(agw: PolicyGateway) -> None:
    c, _ = await _issued(agw, ["acct.example.com"])
    resp = await agw.http.get("/admin/accounts", headers=AUTH)
    accounts = (await resp.json())["accounts"]
    assert len(accounts) == 1 and accounts[0]["status"] == "valid"
    assert "jwk" not in accounts[0]
    account_id = accounts[0]["id"]
    resp = await agw.http.post(f"/admin/accounts/{account_id}/deactivate", headers=AUTH)
    assert resp.status == 200 and (await resp.json())["status"] == "deactivated"
    resp, body = await c.post(c.directory["newOrder"],
                              {"identifiers": [{"type": "dns", "value": "again.example.com"}]})
    assert resp.status == 403 and "deactivated" in body["detail"]
    resp = await agw.http.post(f"/admin/accounts/{account_id}/deactivate", headers=AUTH)
    assert resp.status == 409
    assert (await agw.http.post("/admin/accounts/nope/deactivate", headers=AUTH)).status == 404
    resp = await agw.http.get("/admin/accounts", headers=AUTH, params={"status": "valid"})
    assert (await resp.json())["accounts"] == []
    resp = await agw.http.get("/admin/accounts", headers=AUTH, params={"limit": "x"})
    assert resp.status == 400
    event = (await agw.audit("account_deactivated"))[0]
    assert event["actor"] == "admin:api" and event["request_id"] == account_id


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/admin/certificates"), ("GET", "/admin/certificates/x"),
    ("POST", "/admin/certificates/x/revoke"), ("GET", "/admin/accounts"),
    ("POST", "/admin/accounts/x/deactivate"),
])
async def test_every_inventory_route_needs_the_token(agw: PolicyGateway, method: str,
                                                     path: str) -> None:
    resp = await agw.http.request(method, path, headers={"Authorization": "Bearer nope"})
    assert resp.status == 401
