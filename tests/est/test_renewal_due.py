"""Which EST devices must re-enroll: ``renewal list --due --est`` after ``renewal advance``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from gateway import cli
from tests.e2e.harness import to_toml
from tests.est.support import ALICE, Gateway, b64, certs_of, ec_key, make_csr, request


def _cli(gw: Gateway, tmp_path: Path, *args: str) -> int:
    """``acme-gateway`` against the running gateway's database, as an operator runs it."""
    config = tmp_path / "operator.toml"
    config.write_text(to_toml({"server": {"data_dir": str(gw.core.settings.server.data_dir)}}))
    return cli.main(["--config", str(config), *args])


async def _enroll(gw: Gateway, name: str) -> str:
    csr = make_csr(ec_key(), cn=name, sans=(name,))
    status, _, body = await request(gw, "POST", "/basic/simpleenroll", b64(csr), ALICE)
    assert status == 200, body
    (leaf,) = certs_of(body)
    return format(leaf.serial_number, "x")


async def test_advanced_devices_are_listed_as_due(gw: Gateway, tmp_path: Path,
                                                  capsys: Any) -> None:
    hit = await _enroll(gw, "router01.example.net")
    await _enroll(gw, "router02.example.net")
    assert await asyncio.to_thread(_cli, gw, tmp_path, "renewal", "list", "--due", "--est",
                                   "--json") == 0
    assert json.loads(capsys.readouterr().out) == []
    code = await asyncio.to_thread(_cli, gw, tmp_path, "renewal", "advance", "--serial",
                                   hit.upper(), "--reason", "firmware CA rollover")
    assert code == 0 and "1 certificate(s) advanced" in capsys.readouterr().out
    assert await asyncio.to_thread(_cli, gw, tmp_path, "renewal", "list", "--due", "--est",
                                   "--json") == 0
    [due] = json.loads(capsys.readouterr().out)
    assert due["serial"] == hit and due["identifiers"] == ["router01.example.net"]
    assert due["requester"].startswith("est:")
    events = await gw.core.audit.store.audit_rows(0, 1000)
    advanced = [e for e in events if e["event"] == "renewal_advanced"]
    assert len(advanced) == 1 and advanced[0]["detail"] == "firmware CA rollover"
    assert json.loads(advanced[0]["extra"]) == {"serial": hit}


async def test_advance_without_a_selection_is_refused(gw: Gateway, tmp_path: Path,
                                                      capsys: Any) -> None:
    code = await asyncio.to_thread(_cli, gw, tmp_path, "renewal", "advance", "--reason", "x")
    assert code == 1 and "name what to advance" in capsys.readouterr().err
