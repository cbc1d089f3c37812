"""A served gateway, a client session and the prepared target, for the test and the CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from tests.badinput.runner import TIMEOUT
from tests.badinput.server import Target, prepare, served_gateway


@asynccontextmanager
async def battery_target(data_dir: Path) -> AsyncIterator[tuple[aiohttp.ClientSession, Target]]:
    """The gateway on a loopback port with a registered account and its resources."""
    async with served_gateway(data_dir) as (base, plain_base, client_tls):
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        connector = aiohttp.TCPConnector(limit=16, ssl=client_tls)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            target = await prepare(base, session)
            target.plain_base = plain_base
            yield session, target
