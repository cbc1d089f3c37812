"""Fixtures: a gateway app on the aiohttp test server with a local CA and a fake validator."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.app import create_app
from tests.acme.support import (  # noqa: F401  (re-exported: tests import them from here too)
    FakeValidator,
    Gateway,
    eventually,
    make_settings,
)


@pytest.fixture
async def gateway(aiohttp_client: Any, tmp_path: Any) -> Gateway:
    """A gateway with the embedded defaults (SQLite + local CA) and a fake validator."""
    validator = FakeValidator()
    settings = make_settings(tmp_path, acme={"finalize_wait_seconds": 5.0})
    app = create_app(settings, validator=validator)
    return Gateway(await aiohttp_client(app), validator, settings)
