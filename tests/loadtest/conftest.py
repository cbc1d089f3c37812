"""Fixtures for load generator tests: free loopback ports and a real Pebble started per test."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from loadtest.pebble import PEBBLE_FAST_ENV, PebbleSetup, write_pebble_setup
from tests.conftest import require_tool


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that was free on 127.0.0.1 a moment ago (TCP by default, or UDP)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class RunningPebble:
    """A Pebble process and where to reach it."""

    setup: PebbleSetup
    process: subprocess.Popen[bytes]
    dns_port: int
    log: Path

    @property
    def directory(self) -> str:
        """The ACME directory URL."""
        return self.setup.directory_url


def tail(log: Path) -> str:
    """The end of a process log, for failure messages."""
    return log.read_text()[-2000:]


async def _wait_ready(pebble: RunningPebble, limit_seconds: float = 15.0) -> None:
    context = ssl.create_default_context(cafile=str(pebble.setup.cert))
    async with aiohttp.ClientSession() as http:
        for _ in range(int(limit_seconds / 0.1)):
            if pebble.process.poll() is not None:
                raise RuntimeError(f"pebble exited: {tail(pebble.log)}")
            try:
                async with http.get(pebble.directory, ssl=context) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("pebble did not answer its directory in time")


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a program with its output going to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=out)


@pytest.fixture
def pebble_factory(tmp_path: Path) -> Iterator[object]:
    """Start Pebble (real validation, no sleeps) with extra environment; stopped after the test."""
    require_tool("pebble")
    started: list[subprocess.Popen[bytes]] = []

    async def start(
        extra_env: dict[str, str] | None = None, eab_keys: dict[str, str] | None = None
    ) -> RunningPebble:
        setup = write_pebble_setup(
            tmp_path / f"pebble{len(started)}",
            port=free_port(),
            management_port=free_port(),
            http01_port=free_port(),
            tls_port=free_port(),
            eab_keys=eab_keys,
        )
        dns_port = free_port(socket.SOCK_DGRAM)
        log = tmp_path / f"pebble{len(started)}.log"
        env = os.environ | PEBBLE_FAST_ENV | (extra_env or {})
        process = spawn(setup.command(dns_port), env, log)
        started.append(process)
        pebble = RunningPebble(setup, process, dns_port, log)
        await _wait_ready(pebble)
        return pebble

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
async def pebble(pebble_factory: object) -> AsyncIterator[RunningPebble]:
    """A Pebble with real HTTP-01/DNS-01 validation against the load generator's responders."""
    yield await pebble_factory()  # type: ignore[operator]
