"""Interoperability with pebble-challtestsrv, the responder the end-to-end tests use.

Its DNS server answers every A query with 127.0.0.1, serves TXT records and
HTTP-01/TLS-ALPN-01 responses set through a management API: the same set-up as
certbot/lego runs against the gateway, with our validator as the client.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from gateway.errors import ErrorKind
from gateway.validation import ChallengeTask
from gateway.validation.dns01 import txt_digest
from tests.conftest import require_tool
from tests.e2e.harness import free_port
from tests.validation.conftest import MakeVA

TOOL = "pebble-challtestsrv"
READY_SECONDS = 10.0


@dataclass
class Challtestsrv:
    """A running pebble-challtestsrv on loopback ports."""

    dns: int
    http01: int
    tlsalpn01: int
    management: int

    async def post(self, path: str, body: dict[str, str]) -> None:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{self.management}/{path}"
            async with session.post(url, json=body) as response:
                response.raise_for_status()


async def wait_for_port(port: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_SECONDS
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)  # an external process: nothing to inject a clock into
            continue
        writer.close()
        return


@pytest.fixture
async def challtestsrv() -> AsyncIterator[Challtestsrv]:
    require_tool(TOOL)
    srv = Challtestsrv(free_port(), free_port(), free_port(), free_port())
    ports = {
        "-dns01": srv.dns,
        "-http01": srv.http01,
        "-tlsalpn01": srv.tlsalpn01,
        "-management": srv.management,
    }
    args = [a for flag, port in ports.items() for a in (flag, f"127.0.0.1:{port}")]
    process = await asyncio.create_subprocess_exec(
        TOOL,
        *args,
        "-https01",
        "",
        "-defaultIPv6",
        "",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_for_port(srv.management)
        yield srv
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 5)


async def test_http01(challtestsrv: Challtestsrv, make_va: MakeVA) -> None:
    await challtestsrv.post("add-http01", {"token": "tok1", "content": "tok1.thumb"})
    va = await make_va(
        resolvers=(("127.0.0.1", challtestsrv.dns),), http01_port=challtestsrv.http01
    )

    good = await va.validate(ChallengeTask("dns", "e2e.test", "http-01", "tok1", "tok1.thumb"))
    bad = await va.validate(ChallengeTask("dns", "e2e.test", "http-01", "tok1", "tok1.other"))

    assert good.valid, good.failure
    assert bad.failure is not None and bad.failure.kind is ErrorKind.INCORRECT_RESPONSE


async def test_dns01(challtestsrv: Challtestsrv, make_va: MakeVA) -> None:
    value = txt_digest("tok2.thumb")
    await challtestsrv.post("set-txt", {"host": "_acme-challenge.e2e.test.", "value": value})
    va = await make_va(resolvers=(("127.0.0.1", challtestsrv.dns),))

    outcome = await va.validate(ChallengeTask("dns", "e2e.test", "dns-01", "tok2", "tok2.thumb"))

    assert outcome.valid, outcome.failure


async def test_tlsalpn01(challtestsrv: Challtestsrv, make_va: MakeVA) -> None:
    await challtestsrv.post("add-tlsalpn01", {"host": "e2e.test", "content": "tok3.thumb"})
    va = await make_va(
        resolvers=(("127.0.0.1", challtestsrv.dns),), tlsalpn01_port=challtestsrv.tlsalpn01
    )

    good = await va.validate(ChallengeTask("dns", "e2e.test", "tls-alpn-01", "tok3", "tok3.thumb"))
    bad = await va.validate(ChallengeTask("dns", "e2e.test", "tls-alpn-01", "tok3", "tok3.x"))

    assert good.valid, good.failure
    assert bad.failure is not None and bad.failure.kind is ErrorKind.INCORRECT_RESPONSE
