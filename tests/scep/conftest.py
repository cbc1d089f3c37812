"""Fixtures of the SCEP tests: the gateway with every test label on a loopback HTTP port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.scep.support import ScepGateway, running_scep


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[ScepGateway]:
    """The gateway with the labels of ``scep_section``."""
    async with running_scep(tmp_path) as gateway:
        yield gateway
