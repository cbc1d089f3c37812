"""The web console in a real headless Chromium: log in, approve, find, revoke, see OCSP.

Chromium is driven with selenium (chromedriver); the gateway runs in this test's
event loop, so every browser step runs in a thread. Each page visited is
saved as a screenshot into docs/console/ (linked from docs/admin.md).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509 import ocsp

from gateway.app import create_app
from gateway.est.passwords import hash_password
from tests.acme.flow import issue
from tests.acme.support import FakeValidator, eventually
from tests.acmeclient import make_csr
from tests.admin.conftest import TOKEN, admin_settings
from tests.conftest import require_tool
from tests.pkix.localca_support import ocsp_request_der
from tests.policy.support import PolicyGateway, finalize, ready_order

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
pytestmark = pytest.mark.external("chromium")


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium through chromedriver."""
    require_tool("chromium", "chromedriver")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900"):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


class Operator:
    """What a person does in the browser, one blocking step at a time (run in a thread)."""

    def __init__(self, driver: Any, base: str) -> None:
        self.driver, self.base = driver, base.rstrip("/")
        from selenium.webdriver.common.by import By

        self.by = By

    def open(self, path: str) -> str:
        self.driver.get(self.base + path)
        return str(self.driver.title)

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.set_window_size(1280, 600)
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1280, max(600, min(int(height) + 140, 2400)))
        self.driver.save_screenshot(str(SHOTS / f"{name}.png"))

    def fill(self, name: str, value: str) -> None:
        from selenium.webdriver.support.select import Select

        field = self.driver.find_element(self.by.NAME, name)
        if field.tag_name == "select":
            Select(field).select_by_visible_text(value)
            return
        field.clear()
        field.send_keys(value)

    def click(self, name: str, by: str = "name") -> None:
        """Click and wait until the next page has replaced this one."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.wait import WebDriverWait

        element = self.driver.find_element(by, name)
        element.click()

        def replaced(_driver: Any) -> bool:
            # Chromium reports a detached node either as a stale element or as a node
            # that "does not belong to the document": both mean the page was replaced.
            try:
                element.is_enabled()
            except WebDriverException:
                return True
            return False

        wait = WebDriverWait(self.driver, 20)
        wait.until(replaced)
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")

    def text(self) -> str:
        return str(self.driver.find_element(self.by.TAG_NAME, "main").text)


async def step(action: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(action, *args)


async def _ocsp_status(gw: PolicyGateway, leaf: x509.Certificate,
                       issuer: x509.Certificate) -> ocsp.OCSPCertStatus:
    resp = await gw.http.post("/pkix/local/ocsp", data=ocsp_request_der(leaf, issuer),
                              headers={"Content-Type": "application/ocsp-request"})
    assert resp.status == 200
    return ocsp.load_der_ocsp_response(await resp.read()).certificate_status


async def test_operator_approves_finds_and_revokes(aiohttp_client: Any, tmp_path: Path,
                                                   browser: Any) -> None:
    validator = FakeValidator()
    est = {"users": {"router-admin": hash_password("pw", 1000)},
           "labels": {"routers": {"profile": "default", "auth": "basic",
                                  "names": ["*.routers.example.com"]},
                      "devices": {"profile": "manual", "auth": "cert"}}}
    gw = PolicyGateway(await aiohttp_client(create_app(admin_settings(tmp_path, est=est),
                                                       validator=validator)), validator)
    c = await gw.client()
    _, done, _ = await issue(c, ["shop.example.com", "www.shop.example.com"])
    await issue(c, ["mail.example.org"])
    held = await ready_order(c, ["payroll.example.com"], "manual")
    resp, body = await finalize(c, held, make_csr(["payroll.example.com"])[0])
    assert body["status"] == "processing"
    # "localhost": a secure context for Chromium, which then keeps the Secure cookie on HTTP.
    me = Operator(browser, f"http://localhost:{gw.http.port}/")

    assert "Log in" in await step(me.open, "/admin/")  # no session: the login page
    await step(me.shot, "login")
    await step(me.fill, "token", TOKEN)
    await step(me.fill, "operator", "carol")
    await step(me.click, "button", me.by.TAG_NAME)
    assert "Overview" in await step(lambda: browser.title)
    await step(me.shot, "overview")

    await step(me.open, "/admin/console/approvals")
    assert "payroll.example.com" in await step(me.text)
    await step(me.shot, "approvals")
    await step(me.click, "approve")
    assert "request was approved" in await step(me.text)

    async def order_valid() -> bool:
        return bool((await c.post(held["url"]))[1]["status"] == "valid")

    await eventually(order_valid)  # the ACME client sees its order complete

    await step(me.open, "/admin/console/certificates")
    await step(me.fill, "name", "shop.example")
    await step(me.click, "//form[@method='get']//button", me.by.XPATH)
    assert "www.shop.example.com" in await step(me.text)
    assert "mail.example.org" not in await step(me.text)
    await step(me.shot, "certificates")
    await step(me.click, "table a", me.by.CSS_SELECTOR)
    await step(me.shot, "certificate")
    await step(me.fill, "reason", "keyCompromise")
    # Not ticked: the browser itself refuses to send the form (no navigation).
    await step(lambda: browser.find_element(me.by.NAME, "revoke").click())
    assert "cannot be undone" in await step(me.text)
    await step(lambda: browser.find_element(me.by.NAME, "confirm").click())
    await step(me.click, "revoke")
    assert "certificate was revoked" in await step(me.text)
    await step(me.shot, "revoked")

    pem = (await c.post(done["certificate"]))[0]
    chain = x509.load_pem_x509_certificates(await pem.read())
    status = await _ocsp_status(gw, chain[0], chain[1])
    assert status == ocsp.OCSPCertStatus.REVOKED

    for page, name in (("/admin/console/accounts", "accounts"), ("/admin/console/audit", "audit"),
                       ("/admin/console/compliance", "compliance"), ("/admin/console/est", "est"),
                       ("/admin/", "overview")):
        await step(me.open, page)
        assert "Log out" in await step(lambda: browser.page_source)
        await step(me.shot, name)
    assert "admin:carol" in await step(lambda: (me.open("/admin/console/audit"), me.text())[1])
