"""Fixtures of the policy tests: a gateway with several profiles (see tests/policy/support.py)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.app import create_app
from tests.acme.support import FakeValidator
from tests.e2e.conftest import dns  # noqa: F401  (pebble-challtestsrv, for the e2e tests here)
from tests.policy.support import (  # noqa: F401  (re-exported: tests import them from here too)
    PROFILES,
    PolicyGateway,
    finalize,
    new_order,
    ready_order,
    settings_for,
)


@pytest.fixture
async def pgw(aiohttp_client: Any, tmp_path: Any) -> PolicyGateway:
    """A gateway with the test profiles."""
    validator = FakeValidator()
    app = create_app(settings_for(tmp_path), validator=validator)
    return PolicyGateway(await aiohttp_client(app), validator)
