"""``acme-gateway serve --workers 2`` anchors its audit chain from one process only."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiohttp

from gateway.audit_anchor import Anchor, read_lines
from tests.acme.support import eventually
from tests.acmeclient import AcmeClient
from tests.e2e.harness import run, to_toml
from tests.loadtest.conftest import free_port, spawn
from tests.loadtest.test_gateway import stop, wait_for_directory


async def _register(directory: str, clients: int) -> None:
    """ACME accounts from separate connections, so both workers write audit rows."""
    for _ in range(clients):
        async with aiohttp.ClientSession() as session:
            client = AcmeClient(session, directory)
            await client.start()
            await client.register()


async def test_only_the_primary_worker_anchors(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    config = tmp_path / "gateway.toml"
    config.write_text(to_toml({
        "server": {"data_dir": str(data), "listen": "127.0.0.1", "https_port": 0,
                   "http_port": port, "pkix_http_port": free_port(), "log_level": "info",
                   "access_log": False},
        "audit": {"anchor_interval_seconds": 0.1}}))
    log = tmp_path / "gateway.log"
    gateway = spawn([sys.executable, "-m", "gateway", "--config", str(config), "serve",
                     "--workers", "2"], dict(os.environ), log)
    directory = f"http://127.0.0.1:{port}/acme/directory"
    try:
        await wait_for_directory(directory, gateway, log)
        await _register(directory, 6)

        async def anchored() -> bool:
            lines = read_lines(data / "audit-anchors.jsonl") or []
            return any((a := Anchor.parse(line)) is not None and a.seq >= 6 for line in lines)

        await eventually(anchored, timeout=15)
    finally:
        stop(gateway)
    starts = [line for line in log.read_text().splitlines() if "audit anchors: key" in line]
    assert len(starts) == 1, log.read_text()[-2000:]
    verify = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--config", str(config), "audit", "verify",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out = (await asyncio.wait_for(verify.communicate(), 60))[0].decode()
    assert verify.returncode == 0, out
    assert "signed by SHA256:" in out and "audit chain intact" in out


async def test_an_unusable_anchor_key_stops_serve_with_the_fix(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "audit-anchor.key").write_text("not a key\n")
    config = tmp_path / "gateway.toml"
    config.write_text(to_toml({"server": {"data_dir": str(data), "listen": "127.0.0.1",
                                          "https_port": 0, "http_port": free_port(),
                                          "pkix_http_port": free_port()}}))
    code, out = await run([sys.executable, "-m", "gateway", "--config", str(config), "serve"],
                          timeout=60)
    assert code == 2, out  # exits, rather than hanging on what it had opened
    assert "[audit.anchor_key_file] cannot use the audit anchor key" in out
    assert "restore it from its backup" in out
