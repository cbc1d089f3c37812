"""Fixtures of the EST tests: a manufacturer CA and the gateway on a loopback HTTPS port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.est.support import Gateway, Manufacturer, est_section, running_gateway


@pytest.fixture
def manufacturer(tmp_path: Path) -> Manufacturer:
    """A device manufacturer's CA, trusted by the "certonly" and "both" labels."""
    return Manufacturer(tmp_path)


@pytest.fixture
async def gw(tmp_path: Path, manufacturer: Manufacturer) -> AsyncIterator[Gateway]:
    """The gateway with every test label (see ``est_section``)."""
    async with running_gateway(tmp_path, est_section(manufacturer.ca_file)) as gateway:
        yield gateway
