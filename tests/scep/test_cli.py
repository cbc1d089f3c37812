"""``acme-gateway scep otp``: a password printed once, stored as its hash, audited."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway import cli, config
from gateway.app import build_store
from gateway.core.scep import otp_id
from tests.test_cli import write_config


def _config(tmp_path: Path) -> Path:
    return write_config(tmp_path, {"scep": {"labels": {
        "phones": {"one_time_passwords": True},
        "static": {"password_env": "SCEP_TEST_PW", "names": ["*.example.net"]}}}})


async def test_otp_is_stored_as_its_hash_with_its_names(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCEP_TEST_PW", "pw")
    path = _config(tmp_path)
    args = ["--config", str(path), "scep", "otp", "--label", "phones", "--name", "P1.mdm.net"]
    assert await asyncio.to_thread(cli.main, args) == 0
    password = capsys.readouterr().out.strip()
    store = build_store(config.load(path))
    await store.open()
    try:
        otp = await store.get_scep_otp(otp_id(password))
        rows = await store.audit_rows(0, 10)
    finally:
        await store.close()
    assert otp is not None and otp.names == ("p1.mdm.net",) and otp.status == "active"
    assert password not in str(rows)
    assert [r["event"] for r in rows] == ["scep_otp_issued"]


@pytest.mark.parametrize(("args", "words"), [
    (["--label", "static", "--name", "a.example.net"], "one_time_passwords = true"),
    (["--label", "nope"], "does not exist"),
    (["--label", "phones"], "give the device its names with --name"),
])
async def test_refusals_name_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch, args: list[str],
                                     words: str) -> None:
    monkeypatch.setenv("SCEP_TEST_PW", "pw")
    cmd = ["--config", str(_config(tmp_path)), "scep", "otp", *args]
    assert await asyncio.to_thread(cli.main, cmd) == 2
    assert words in capsys.readouterr().err
