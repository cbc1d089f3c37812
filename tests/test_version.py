"""The version: ``acme-gateway --version`` and ``/healthz`` say the same as pyproject.toml."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from gateway.app import create_app
from gateway.cli import main
from gateway.version import version
from tests.acme.support import FakeValidator, make_settings

ROOT = Path(__file__).resolve().parent.parent


def _declared() -> str:
    found = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert found
    return found.group(1)


def test_version_is_the_declared_one() -> None:
    assert version() == _declared()


def test_cli_prints_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"acme-gateway {_declared()}"


async def test_healthz_carries_version(aiohttp_client: Any, tmp_path: Path) -> None:
    http = await aiohttp_client(create_app(make_settings(tmp_path), validator=FakeValidator()))
    resp = await http.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "version": _declared()}
