"""End to end with real clients: EAB with lego and certbot, approval while certbot waits,
rejection seen by lego, and a gateway killed while a job waits.

The gateway runs as ``python -m gateway serve`` and is operated with the real
``acme-gateway`` commands (``eab create``, ``approvals``, ``approve``, ``reject``),
which work on its database while it serves.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.acmeclient import AcmeClient, b64, make_csr
from tests.conftest import require_tool
from tests.e2e.harness import ChallTestSrv, GatewayProcess, free_port, run

TIMEOUT = 150.0


def _doc(dns: ChallTestSrv, **profile: Any) -> dict[str, Any]:
    return {
        "acme": {"retry_after_seconds": 1, "finalize_wait_seconds": 1},
        "jobs": {"scan_period_seconds": 0.2},
        "validation": {"resolvers": [f"127.0.0.1:{dns.dns_port}"], "allow_loopback": True,
                       "http01_port": free_port(), "attempt_timeout_seconds": 5,
                       "challenge_types": ["http-01"]},
        "profiles": {"default": {"ca": "local"}, "web": {"ca": "local", **profile}},
    }


async def _gateway(tmp_path: Path, doc: dict[str, Any]) -> GatewayProcess:
    gw = GatewayProcess(tmp_path, doc)
    await gw.start()
    return gw


async def _cli(gw: GatewayProcess, *args: str) -> tuple[int, str]:
    return await run([sys.executable, "-m", "gateway", "--config", str(gw.config), *args])


async def _eab_key(gw: GatewayProcess, *args: str) -> tuple[str, str]:
    code, out = await _cli(gw, "eab", "create", *args)
    assert code == 0, out
    kid = re.search(r"^kid:\s+(\S+)", out, re.M)
    hmac_key = re.search(r"^hmac:\s+(\S+)", out, re.M)
    assert kid and hmac_key, out
    return kid.group(1), hmac_key.group(1)


async def _first_pending(gw: GatewayProcess, timeout: float = 60.0) -> str:
    """Poll ``acme-gateway approvals`` until a request waits; its id."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        code, out = await _cli(gw, "approvals")
        assert code == 0, out
        if not out.startswith("no request"):
            return out.split()[0]
        await asyncio.sleep(0.5)
    raise AssertionError("no request was held for approval")


def _certbot(gw: GatewayProcess, tmp: Path, name: str, *extra: str) -> list[str]:
    port = str(gw.doc["validation"]["http01_port"])
    return ["certbot", "certonly", "--standalone", "--http-01-address", "127.0.0.1",
            "--http-01-port", port, "-d", name, "--server", gw.directory, "--non-interactive",
            "--agree-tos", "--register-unsafely-without-email",
            "--config-dir", str(tmp / "cb" / "config"), "--work-dir", str(tmp / "cb" / "work"),
            "--logs-dir", str(tmp / "cb" / "logs"), *extra]


def _lego(gw: GatewayProcess, tmp: Path, name: str, *extra: str) -> list[str]:
    port = gw.doc["validation"]["http01_port"]
    return ["lego", "--server", gw.directory, "--email", "ops@example.com", "--accept-tos",
            "--path", str(tmp / "lego"), "--domains", name, "--http", "--http.port",
            f"127.0.0.1:{port}", *extra]


def _audit_events(gw: GatewayProcess) -> list[str]:
    with sqlite3.connect(gw.workdir / "data" / "gateway.db") as db:
        return [r[0] for r in db.execute("SELECT event FROM audit_events ORDER BY seq")]


async def test_lego_with_eab(dns: ChallTestSrv, tmp_path: Path) -> None:
    require_tool("lego")
    doc = _doc(dns)
    doc["acme"]["external_account_required"] = True
    gw = await _gateway(tmp_path, doc)
    try:
        env = {"LEGO_CA_CERTIFICATES": str(gw.tls_cert)}
        code, out = await run(_lego(gw, tmp_path, "eab.example.com", "run"), env, TIMEOUT)
        assert code != 0 and "requires External Account Binding" in out, out
        kid, hmac_key = await _eab_key(gw, "--profile", "web", "--allowed-domains",
                                       "*.example.com")
        code, out = await run(_lego(gw, tmp_path, "bad.example.com", "--eab", "--kid", kid,
                                    "--hmac", b64(b"wrong key of 32 bytes, not ours!"), "run"),
                              env, TIMEOUT)
        assert code != 0 and "the MAC does not verify" in out, out
        code, out = await run(_lego(gw, tmp_path, "eab.example.com", "--eab", "--kid", kid,
                                    "--hmac", hmac_key, "run"), env, TIMEOUT)
        assert code == 0, out
        assert (tmp_path / "lego" / "certificates" / "eab.example.com.crt").exists()
        code, out = await _cli(gw, "eab", "list")
        assert f"{kid}  used" in out and hmac_key not in out
    finally:
        await gw.stop()
    events = _audit_events(gw)
    assert events.count("unauthorized") == 1 and "issued" in events  # the wrong MAC


async def test_certbot_with_eab(dns: ChallTestSrv, tmp_path: Path) -> None:
    require_tool("certbot")
    doc = _doc(dns)
    doc["acme"]["external_account_required"] = True
    gw = await _gateway(tmp_path, doc)
    try:
        kid, hmac_key = await _eab_key(gw, "--profile", "web")
        code, out = await run(_certbot(gw, tmp_path, "cb-eab.example.com", "--eab-kid", kid,
                                       "--eab-hmac-key", hmac_key),
                              {"REQUESTS_CA_BUNDLE": str(gw.tls_cert)}, TIMEOUT)
        assert code == 0, out
        live = tmp_path / "cb" / "config" / "live" / "cb-eab.example.com" / "cert.pem"
        assert live.exists()
    finally:
        await gw.stop()
    with sqlite3.connect(gw.workdir / "data" / "gateway.db") as db:
        [(profile,)] = db.execute("SELECT profile FROM orders").fetchall()
    assert profile == "web"  # certbot sends no profile: the EAB key's first one applies


async def test_certbot_waits_for_cli_approval(dns: ChallTestSrv, tmp_path: Path) -> None:
    require_tool("certbot")
    doc = _doc(dns, approval_required=True)
    doc["acme"]["default_profile"] = "web"
    gw = await _gateway(tmp_path, doc)
    try:
        certbot = asyncio.create_task(run(
            _certbot(gw, tmp_path, "held.example.com", "--issuance-timeout", "120"),
            {"REQUESTS_CA_BUNDLE": str(gw.tls_cert)}, TIMEOUT))
        order_id = await _first_pending(gw)
        await asyncio.sleep(2)  # certbot is polling the processing order meanwhile
        assert not certbot.done()
        code, out = await _cli(gw, "approve", order_id, "--approver", "alice")
        assert code == 0, out
        code, out = await certbot
        assert code == 0, out
        assert (tmp_path / "cb" / "config" / "live" / "held.example.com" / "cert.pem").exists()
    finally:
        await gw.stop()
    events = _audit_events(gw)
    assert events.index("approval_pending") < events.index("approved") < events.index("issued")


async def test_lego_sees_the_rejection_reason(dns: ChallTestSrv, tmp_path: Path) -> None:
    require_tool("lego")
    doc = _doc(dns, approval_required=True)
    doc["acme"]["default_profile"] = "web"  # this lego sends no profile
    gw = await _gateway(tmp_path, doc)
    try:
        lego = asyncio.create_task(run(
            # lego polls an invalid order until --cert.timeout, then shows its error
            _lego(gw, tmp_path, "nope.example.com", "--cert.timeout", "15", "run"),
            {"LEGO_CA_CERTIFICATES": str(gw.tls_cert)}, TIMEOUT))
        order_id = await _first_pending(gw)
        code, out = await _cli(gw, "reject", order_id, "--reason", "not an approved host")
        assert code == 0, out
        code, out = await lego
        assert code != 0
        assert "rejected by an approver: not an approved host" in out, out
    finally:
        await gw.stop()


async def _http01(port: int, client: AcmeClient) -> web.AppRunner:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(text=client.key_authorization(request.match_info["token"]))

    app = web.Application()
    app.router.add_get("/.well-known/acme-challenge/{token}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def test_killed_gateway_finishes_held_job_after_restart(dns: ChallTestSrv,
                                                             tmp_path: Path) -> None:
    import aiohttp

    gw = await _gateway(tmp_path, _doc(dns, approval_required=True))
    connector = aiohttp.TCPConnector(ssl=gw.ssl_context())
    session = aiohttp.ClientSession(connector=connector)
    c = AcmeClient(session, gw.directory)
    responder = await _http01(gw.doc["validation"]["http01_port"], c)
    try:
        await c.start()
        await c.register()
        resp, order = await c.post(c.directory["newOrder"], {
            "identifiers": [{"type": "dns", "value": "crash.example.com"}], "profile": "web"})
        order_url = resp.headers["Location"]
        _, authz = await c.post(order["authorizations"][0])
        chall = next(ch for ch in authz["challenges"] if ch["type"] == "http-01")
        await c.post(chall["url"], {})
        for _ in range(100):
            _, order = await c.post(order_url)
            if order["status"] == "ready":
                break
            await asyncio.sleep(0.1)
        resp, order = await c.post(order["finalize"], {"csr": b64(make_csr(
            ["crash.example.com"])[0])})
        assert order["status"] == "processing", order
        await gw.stop(signal.SIGKILL)  # a crash while the job waits
        code, out = await _cli(gw, "approve", order_url.rsplit("/", 1)[1])
        assert code == 0, out
        await gw.start()
        await c.start()  # a fresh nonce from the new process
        for _ in range(100):
            _, order = await c.post(order_url)
            if order["status"] != "processing":
                break
            await asyncio.sleep(0.2)
        assert order["status"] == "valid", order
    finally:
        await responder.cleanup()
        await session.close()
        await gw.stop()
    with sqlite3.connect(gw.workdir / "data" / "gateway.db") as db:
        assert db.execute("SELECT COUNT(*) FROM certificates").fetchone() == (1,)
        assert db.execute("SELECT COUNT(*) FROM jobs").fetchone() == (0,)
    assert _audit_events(gw).count("issued") == 1
