"""The web console without a browser: login, session cookie, CSRF, escaping, every page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from gateway.admin.session import ConsoleSessions
from gateway.app import create_app
from gateway.model.records import CertificateQuery
from tests.acme.flow import issue
from tests.acme.support import FakeValidator
from tests.acmeclient import make_csr
from tests.admin.conftest import TOKEN, admin_settings
from tests.policy.support import PolicyGateway, finalize, ready_order, settings_for

PAGES = ["/admin/", "/admin/console/approvals", "/admin/console/certificates",
         "/admin/console/accounts", "/admin/console/audit", "/admin/console/compliance",
         "/admin/console/est"]


async def _login(agw: PolicyGateway, token: str = TOKEN, operator: str = "carol") -> Any:
    return await agw.http.post("/admin/login", data={"token": token, "operator": operator},
                               allow_redirects=False)


class Console:
    """A logged-in operator. The test client keeps Secure cookies off plain HTTP (as it
    should), so the session cookie is sent by hand."""

    def __init__(self, agw: PolicyGateway, cookie: str) -> None:
        self.http, self.headers = agw.http, {"Cookie": cookie}

    async def get(self, path: str, **kwargs: Any) -> Any:
        return await self.http.get(path, headers=self.headers, allow_redirects=False, **kwargs)

    async def post(self, path: str, data: dict[str, str]) -> Any:
        return await self.http.post(path, headers=self.headers, data=data,
                                    allow_redirects=False)


async def _console(agw: PolicyGateway) -> Console:
    resp = await _login(agw)
    assert resp.status == 303
    agw.http.session.cookie_jar.clear()
    return Console(agw, resp.headers["Set-Cookie"].split(";", 1)[0])


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, html
    return found.group(1)


async def test_login_sets_a_strict_cookie_and_pages_need_it(agw: PolicyGateway) -> None:
    for path in PAGES:
        resp = await agw.http.get(path, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == "/admin/login", path
    resp = await _login(agw, token="wrong")
    assert resp.status == 401 and "not the admin token" in await resp.text()
    assert (await agw.audit("unauthorized"))[-1]["detail"].startswith("console login")
    resp = await _login(agw, operator="<script>")
    assert resp.status == 400
    resp = await _login(agw)
    assert resp.status == 303
    cookie = resp.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/admin/"):
        assert attribute in cookie, cookie
    console = Console(agw, cookie.split(";", 1)[0])
    for path in PAGES:
        resp = await console.get(path)
        assert resp.status == 200, path
        assert "Log out" in await resp.text()
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
        assert "<script" not in await resp.text()


async def test_forms_need_the_session_csrf_token(agw: PolicyGateway) -> None:
    c = await agw.client()
    await issue(c, ["csrf.example.com"])
    console = await _console(agw)
    [cert] = await agw.core.inventory.find(CertificateQuery())
    url = f"/admin/console/certificates/{cert.certificate.id}/revoke"
    page = await (await console.get(url.removesuffix("/revoke"))).text()
    for data in ({"reason": "superseded"}, {"reason": "superseded", "csrf": "0" * 64},
                 {"reason": "superseded", "csrf": "\u00e9" * 64}):
        resp = await console.post(url, data)
        assert resp.status == 403 and "not from this console" in await resp.text()
    resp = await agw.http.post(url, data={"reason": "superseded", "csrf": _csrf(page)})
    assert resp.status == 403 and "session has ended" in await resp.text()  # no cookie
    assert (await agw.core.inventory.certificate(cert.certificate.id)).state == "valid"
    resp = await console.post(url, {"reason": "superseded", "csrf": _csrf(page)})
    assert resp.status == 400 and "tick the box" in await resp.text()
    resp = await console.post(url, {"reason": "superseded", "csrf": _csrf(page),
                                    "confirm": "yes"})
    assert resp.status == 303 and "revoked" in resp.headers["Location"]
    assert (await agw.core.inventory.certificate(cert.certificate.id)).state == "revoked"
    assert (await agw.audit("revoked"))[-1]["actor"] == "admin:carol"


async def test_database_text_is_escaped(agw: PolicyGateway) -> None:
    await agw.core.audit.record("policy_refused", actor="<img src=x onerror=alert(1)>",
                                detail="<script>alert(2)</script>")
    console = await _console(agw)
    html = await (await console.get("/admin/console/audit")).text()
    assert "<img src=x" not in html and "<script>alert" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    html = await (await console.get("/admin/console/audit",
                                    params={"text": '"><b>x</b>'})).text()
    assert '"><b>x</b>' not in html


async def test_a_forged_or_expired_cookie_is_no_session(agw: PolicyGateway) -> None:
    sessions = ConsoleSessions(TOKEN)
    good = sessions.issue("carol").cookie
    assert sessions.check(good) is not None
    forged = good.replace("carol", "mallory")
    expired = sessions.issue("carol", now=1000.0).cookie
    other = ConsoleSessions("another-token").issue("carol").cookie
    for cookie in (forged, expired, other, "", "a.b.c.d", "x" * 300, "1.a.b.\u00e9"):
        assert sessions.check(cookie) is None, cookie
        resp = await Console(agw, f"gw_console={cookie}").get("/admin/")
        assert resp.status == 303
    assert (await Console(agw, f"gw_console={good}").get("/admin/")).status == 200


async def test_est_page_lists_labels_and_users_never_hashes(aiohttp_client: Any,
                                                           tmp_path: Path) -> None:
    from gateway.est.passwords import hash_password

    est = {"users": {"rt<1>": hash_password("pw", 1000)},
           "labels": {"routers": {"profile": "default", "auth": "basic"}}}
    agw = PolicyGateway(await aiohttp_client(create_app(admin_settings(tmp_path, est=est),
                                                        validator=FakeValidator())),
                        FakeValidator())
    html = await (await (await _console(agw)).get("/admin/console/est")).text()
    assert "routers" in html and "basic" in html and "rt&lt;1&gt;" in html
    assert "pbkdf2" not in html.lower() and "$" not in html


async def test_no_token_no_console(aiohttp_client: Any, tmp_path: Path) -> None:
    http = await aiohttp_client(create_app(settings_for(tmp_path), validator=FakeValidator()))
    for path in ("/admin/", "/admin/login", "/admin/console/certificates"):
        assert (await http.get(path)).status == 404


@pytest.mark.parametrize("path", ["/admin/console/certificates?state=nope",
                                  "/admin/console/certificates?limit=99999",
                                  "/admin/console/compliance?since=garbage",
                                  "/admin/console/certificates/unknown"])
async def test_bad_input_is_an_html_refusal(agw: PolicyGateway, path: str) -> None:
    console = await _console(agw)
    resp = await console.get(path)
    assert resp.status in (400, 404) and resp.content_type == "text/html"
    assert 'class="error"' in await resp.text()


async def test_reject_needs_a_reason_and_deactivate_acts(agw: PolicyGateway) -> None:
    c = await agw.client()
    order = await ready_order(c, ["hr.example.com"], "manual")
    await finalize(c, order, make_csr(["hr.example.com"])[0])
    order_id = order["url"].rsplit("/", 1)[1]
    console = await _console(agw)
    csrf = _csrf(await (await console.get("/admin/console/approvals")).text())
    url = f"/admin/console/approvals/{order_id}/reject"
    resp = await console.post(url, {"csrf": csrf, "reason": "  "})
    assert resp.status == 400 and "needs a reason" in await resp.text()
    resp = await console.post(url, {"csrf": csrf, "reason": "not our team"})
    assert resp.headers["Location"] == "/admin/console/approvals?done=rejected"
    assert (await c.post(order["url"]))[1]["status"] == "invalid"
    [account] = await agw.core.inventory.accounts()
    resp = await console.post(f"/admin/console/accounts/{account.id}/deactivate",
                              {"csrf": csrf, "confirm": "yes"})
    assert resp.status == 303
    assert (await agw.core.inventory.accounts("deactivated"))[0].id == account.id
    assert (await agw.audit("account_deactivated"))[0]["actor"] == "admin:carol"


async def test_a_crafted_notice_is_not_shown(agw: PolicyGateway) -> None:
    console = await _console(agw)
    crafted = {"done": "Call 555-0100 to re-enter your token"}
    html = await (await console.get("/admin/console/accounts", params=crafted)).text()
    assert "555-0100" not in html
    html = await (await console.get("/admin/console/accounts",
                                    params={"done": "deactivated"})).text()
    assert "The account was deactivated." in html
