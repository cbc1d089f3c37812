"""``acme-gateway serve --workers 2``: two processes, one port, one SQLite file, one CA.

Driven by the load generator (real HTTP-01, a nonce pool shared across
connections, so nonces issued by one worker are redeemed by the other).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from loadtest.cli import execute
from tests.loadtest.test_gateway import RunningGateway, stop, wait_for_directory


@asynccontextmanager
async def two_workers(tmp_path: Path, extra_toml: str = "") -> AsyncIterator[RunningGateway]:
    """``serve --workers 2``, once both workers listen; stopped on exit."""
    running = RunningGateway(tmp_path, ("--workers", "2"), extra_toml)
    try:
        await wait_for_directory(running.directory, running.process, running.log)
        for _ in range(100):  # both workers listening, not just the first
            if len(_children(running.process.pid)) == 2:
                break
            await asyncio.sleep(0.05)
        yield running
    finally:
        stop(running.process)


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with two_workers(tmp_path) as running:
        yield running


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _load(gateway: RunningGateway, n: int) -> dict[str, object]:
    status, result = await execute([
        "acme", "--directory", gateway.directory, "-n", str(n), "-c", "8",
        "--http01-port", str(gateway.http01_port), "--dns-port", str(gateway.dns_port),
        "--timeout", "60", "--quiet"])
    assert result is not None
    assert status == 0, result["error_samples"]
    return result


async def _scrape(url: str) -> str:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        async with s.get(url) as resp:
            return await resp.text()


def _metrics_url(gateway: RunningGateway) -> str:
    return gateway.directory.replace("/acme/directory", "/metrics")


async def _acme_count(gateway: RunningGateway, tries: int = 12) -> float:
    """ACME 2xx answers counted, the same whichever worker answers the scrape."""
    url = _metrics_url(gateway)
    seen = set()
    for _ in range(tries):  # a new connection each time: the kernel picks the worker
        total = 0.0
        for line in (await _scrape(url)).splitlines():
            if line.startswith('acme_gateway_http_requests_total{frontend="acme",status="2'):
                total += float(line.rsplit(" ", 1)[1])
        seen.add(total)
    assert len(seen) == 1, f"workers disagree on the count: {seen}"
    return seen.pop()


async def test_two_workers_share_nonces_store_and_ca(workers: RunningGateway) -> None:
    result = await _load(workers, 40)
    assert result["certificates_issued"] == 40 and not result["errors"]
    # Every scrape shows the sum over both workers, and both of them counted requests.
    assert await _acme_count(workers) >= 40 * 6  # order, authz, challenge, finalize, ...
    shared = workers.tmp_path / "data" / "metrics"
    assert len(list(shared.glob("counter_*.db"))) == 2
    url = _metrics_url(workers)
    for _ in range(40):  # each worker publishes its work in flight every second
        text = await _scrape(url)
        if "acme_gateway_validations_in_flight 0.0" in text:
            break
        await asyncio.sleep(0.1)
    assert text.count("\nacme_gateway_validations_in_flight ") == 1, text
    assert "acme_gateway_validations_in_flight 0.0" in text
    data = workers.tmp_path / "data"
    with sqlite3.connect(data / "gateway.db") as db:
        assert db.execute("SELECT count(*) FROM certificates").fetchone()[0] == 40
        assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
    with sqlite3.connect(data / "ca" / "local" / "ca.db") as ledger:  # one CA call per order
        assert ledger.execute("SELECT count(*) FROM issued").fetchone()[0] == 40
    verify = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--config", str(workers.config), "audit", "verify",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(verify.communicate(), 60)
    assert verify.returncode == 0, out.decode()


async def test_a_killed_worker_is_replaced_and_stop_ends_all(workers: RunningGateway) -> None:
    await _load(workers, 8)
    counted = await _acme_count(workers)
    before = _children(workers.process.pid)
    assert len(before) == 2
    os.kill(before[1], signal.SIGKILL)
    for _ in range(100):
        now = _children(workers.process.pid)
        if len(now) == 2 and before[1] not in now:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"no replacement worker: {_children(workers.process.pid)}")
    await wait_for_directory(workers.directory, workers.process, workers.log)
    serving = _children(workers.process.pid)
    result = await _load(workers, 8)
    assert result["certificates_issued"] == 8
    # The dead worker's counts stay in the sum (counters never go back); its gauges go.
    assert await _acme_count(workers) >= counted + 8 * 6
    shared = workers.tmp_path / "data" / "metrics"
    assert (shared / f"counter_{before[1]}.db").exists()
    assert not list(shared.glob(f"gauge_*_{before[1]}.db"))
    workers.process.send_signal(signal.SIGTERM)
    for _ in range(150):
        if workers.process.poll() is not None:
            break
        await asyncio.sleep(0.1)
    assert workers.process.returncode == 0
    # The supervisor waits for its workers: none outlives it (orphans would be re-parented).
    assert not [pid for pid in serving if _alive(pid)], serving
