"""``acme-gateway certs list|show|revoke`` and ``accounts list|deactivate``, text and JSON."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from gateway import cli
from gateway.app import create_app
from tests.acme.flow import issue
from tests.acme.support import FakeValidator
from tests.e2e.harness import to_toml
from tests.policy.support import PolicyGateway, settings_for


@pytest.fixture
async def pgw(aiohttp_client: Any, tmp_path: Path) -> PolicyGateway:
    """A serving gateway on ``tmp_path``, which the CLI opens beside it."""
    validator = FakeValidator()
    app = create_app(settings_for(tmp_path), validator=validator)
    return PolicyGateway(await aiohttp_client(app), validator)


def _cli(tmp_path: Path, *args: str) -> int:
    """Run ``acme-gateway`` against the test gateway's database, as an operator would."""
    config = tmp_path / "gw.toml"
    config.write_text(to_toml({"server": {"data_dir": str(tmp_path)},
                               "profiles": {"default": {"ca": "local"}}}))
    return cli.main(["--config", str(config), *args])


async def _run(tmp_path: Path, capsys: Any, *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(_cli, tmp_path, *args)
    out = capsys.readouterr()
    return code, out.out, out.err


async def _json(tmp_path: Path, capsys: Any, *args: str) -> Any:
    code, out, err = await _run(tmp_path, capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


async def test_certs_list_show_and_revoke(pgw: PolicyGateway, tmp_path: Path,
                                          capsys: Any) -> None:
    c = await pgw.client()
    await issue(c, ["cli.example.com"])
    await issue(c, ["other.example.net"])
    code, out, _ = await _run(tmp_path, capsys, "certs", "list", "--name", "cli.example")
    assert code == 0 and "cli.example.com" in out and "other" not in out
    [found] = await _json(tmp_path, capsys, "certs", "list", "--name", "cli.example")
    assert found["state"] == "valid" and found["profile"] == "default"
    assert len(await _json(tmp_path, capsys, "certs", "list", "--expires-within-days",
                           "3650")) == 2
    code, out, _ = await _run(tmp_path, capsys, "certs", "show", found["serial"])
    assert code == 0 and "issued" in out and "BEGIN CERTIFICATE" in out
    shown = await _json(tmp_path, capsys, "certs", "show", found["id"])
    assert shown["serial"] == found["serial"]
    revoked = await _json(tmp_path, capsys, "certs", "revoke", found["serial"],
                          "--reason", "superseded", "--approver", "erin")
    assert revoked["state"] == "revoked" and revoked["revocation_reason"] == 4
    assert (await pgw.audit("revoked"))[-1]["actor"] == "cli:erin"
    code, _, err = await _run(tmp_path, capsys, "certs", "revoke", found["serial"])
    assert code == 1 and "already revoked" in err
    assert [x["id"] for x in await _json(tmp_path, capsys, "certs", "list", "--state",
                                         "revoked")] == [found["id"]]


@pytest.mark.parametrize(("args", "complaint"), [
    (("certs", "list", "--state", "gone"), "state"),
    (("certs", "list", "--expires-after", "soon"), "ISO date"),
    (("certs", "show", "nope"), "no certificate"),
    (("accounts", "deactivate", "nope"), "no ACME account"),
])
async def test_refusals_exit_1_with_one_line(pgw: PolicyGateway, tmp_path: Path, capsys: Any,
                                             args: tuple[str, ...], complaint: str) -> None:
    code, out, err = await _run(tmp_path, capsys, *args)
    assert code == 1 and complaint in err and out == ""


async def test_accounts_list_and_deactivate(pgw: PolicyGateway, tmp_path: Path,
                                            capsys: Any) -> None:
    await pgw.client()
    [account] = await _json(tmp_path, capsys, "accounts", "list")
    assert account["status"] == "valid"
    code, out, _ = await _run(tmp_path, capsys, "accounts", "list")
    assert code == 0 and account["id"] in out
    done = await _json(tmp_path, capsys, "accounts", "deactivate", account["id"])
    assert done["status"] == "deactivated"
    assert await _json(tmp_path, capsys, "accounts", "list", "--status", "valid") == []
    code, _, err = await _run(tmp_path, capsys, "accounts", "deactivate", account["id"])
    assert code == 1 and "already deactivated" in err


async def test_compliance_export(pgw: PolicyGateway, tmp_path: Path, capsys: Any) -> None:
    await issue(await pgw.client(), ["audited.example.com"])
    code, out, _ = await _run(tmp_path, capsys, "compliance", "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("issued_at,serial,profile")
    assert "audited.example.com" in out.splitlines()[1]
    code, out, _ = await _run(tmp_path, capsys, "compliance", "--format", "json")
    assert code == 0 and json.loads(out)[0]["verdict"] == "ok"
    code, out, _ = await _run(tmp_path, capsys, "compliance", "--since", "2000-01-01",
                              "--until", "2000-01-02")
    assert code == 0 and "0 issuance(s), 0 with violations" in out
