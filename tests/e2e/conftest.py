"""Fixtures for end-to-end tests: challtestsrv DNS and a gateway process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.e2e.harness import ChallTestSrv, GatewayProcess, free_port


@pytest.fixture
async def dns() -> AsyncIterator[ChallTestSrv]:
    """pebble-challtestsrv answering A queries with 127.0.0.1."""
    require_tool("pebble-challtestsrv", "curl")
    srv = ChallTestSrv()
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def gateway(tmp_path: Path, dns: ChallTestSrv) -> AsyncIterator[GatewayProcess]:
    """The gateway on its embedded defaults, validating through challtestsrv DNS."""
    gw = GatewayProcess(tmp_path, {
        "acme": {"retry_after_seconds": 1},
        "validation": {"resolvers": [f"127.0.0.1:{dns.dns_port}"], "allow_loopback": True,
                       "http01_port": free_port(), "attempt_timeout_seconds": 5},
    })
    await gw.start()
    yield gw
    await gw.stop()
