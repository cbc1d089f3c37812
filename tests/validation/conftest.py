"""Fixtures for the validation authority: a loopback DNS responder and engine factories."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from gateway.validation.engine import ValidationAuthority
from gateway.validation.settings import ValidationSettings
from tests.validation.dnsserver import DnsResponder

MakeVA = Callable[..., Awaitable[ValidationAuthority]]


@pytest.fixture
async def dns_server() -> AsyncIterator[DnsResponder]:
    """A DNS responder on 127.0.0.1 (UDP+TCP) with an empty zone."""
    server = DnsResponder()
    await server.start()
    yield server
    await server.close()


def loopback_settings(dns: DnsResponder, **overrides: Any) -> ValidationSettings:
    """Settings for loopback tests: our resolver, loopback allowed, one quick attempt."""
    base = ValidationSettings(
        resolvers=(("127.0.0.1", dns.port),),
        allow_loopback=True,
        attempt_timeout_seconds=2.0,
        attempts=1,
        retry_backoff_seconds=0.0,
    )
    return dataclasses.replace(base, **overrides)


@pytest.fixture
async def make_va(dns_server: DnsResponder) -> AsyncIterator[MakeVA]:
    """Build started ValidationAuthority objects; all are closed at the end of the test."""
    made: list[ValidationAuthority] = []

    async def make(**overrides: Any) -> ValidationAuthority:
        sleep = overrides.pop("sleep", None)
        settings = loopback_settings(dns_server, **overrides)
        va = ValidationAuthority(settings, sleep=sleep) if sleep else ValidationAuthority(settings)
        await va.start()
        made.append(va)
        return va

    yield make
    for va in made:
        await va.aclose()


async def closed_port() -> int:
    """A loopback TCP port that nothing listens on (it was bound, then closed)."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()
    return port
