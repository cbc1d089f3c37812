"""A gateway with the admin API on (token from a file), and helpers to issue through it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.app import create_app
from tests.acme.support import FakeValidator
from tests.policy.support import PolicyGateway, settings_for

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def admin_settings(tmp_path: Path, **tables: Any) -> Any:
    """The policy test settings with an admin token read from a file."""
    token_file = tmp_path / "admin.token"
    token_file.write_text(TOKEN + "\n")
    return settings_for(tmp_path, admin={"token_file": str(token_file)}, **tables)


@pytest.fixture
async def agw(aiohttp_client: Any, tmp_path: Path) -> PolicyGateway:
    """A gateway whose admin token is read from a file."""
    return PolicyGateway(await aiohttp_client(create_app(admin_settings(tmp_path),
                                                         validator=FakeValidator())),
                         FakeValidator())
