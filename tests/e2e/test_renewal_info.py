"""The incident lever end to end: lego's certificate, renewalInfo asked as a client asks,
``acme-gateway renewal advance``, and the window now in the past."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from gateway import cli
from loadtest.cli import execute
from tests.e2e.harness import GatewayProcess
from tests.e2e.test_real_clients import lego_http01


async def _ask(gw: GatewayProcess, crt: Path, capsys: Any) -> dict[str, Any]:
    capsys.readouterr()
    status, _ = await execute(["renewal-info", "--directory", gw.directory,
                               "--cafile", str(gw.tls_cert), str(crt)])
    assert status == 0
    return dict(json.loads(capsys.readouterr().out))


async def test_advance_asks_lego_certificate_to_renew_now(gateway: GatewayProcess,
                                                         tmp_path: Path, capsys: Any) -> None:
    crt = await lego_http01(gateway, tmp_path, "ari.example.com")
    before = await _ask(gateway, crt, capsys)
    assert before["verdict"] == "ari_scheduled" and before["retry_after"] == "21600"
    code = await asyncio.to_thread(cli.main, [
        "--config", str(gateway.config), "renewal", "advance", "--name", "ari.example.com",
        "--reason", "drill", "--explanation-url", "https://status.example/drill"])
    assert code == 0
    after = await _ask(gateway, crt, capsys)
    assert after["verdict"] == "ari_due" and after["cert_id"] == before["cert_id"]
    assert after["explanationURL"] == "https://status.example/drill"
