"""docs/lab.md, run as written: every command block of the lab page is executed here.

The page's blocks are marked ``<!-- lab: NAME -->``. Each test starts a fresh
lab in a temporary directory: the ``config`` and ``hook`` blocks, then the
``dns`` and ``gateway`` blocks as background processes (the page's two
terminals), then one client block, which must exit 0 (each ends by verifying
its certificate against the gateway's CA with openssl). The page's port
numbers are swapped for free ones so that labs can run side by side; nothing
else is changed. ``acme-gateway`` is this checkout, through a shim on PATH.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import require_tool
from tests.e2e.harness import free_port, run

ROOT = Path(__file__).resolve().parents[2]
LAB_PAGE = ROOT / "docs" / "lab.md"
BLOCK = re.compile(r"<!-- lab: ([\w-]+) -->\n```sh\n(.*?)```", re.S)
# The page's ports: HTTPS, DNS, DNS management, http-01 and tls-alpn-01 responders.
PAGE_PORTS = (8443, 8080, 8053, 8055, 5002, 5001)
SETUP = ("config", "hook", "dns", "gateway")
TIMEOUT = 150.0
ACME_SH_REASON = ("acme.sh has no Debian, PyPI or npm package: "
                  "set ACME_SH=/path/to/acme.sh to run it")

# Client block → the programs it needs (besides curl and openssl).
CLIENTS: dict[str, tuple[str, ...]] = {
    "certbot-http01": ("certbot",),
    "certbot-dns01": ("certbot",),
    "lego-http01": ("lego",),
    "lego-dns01": ("lego",),
    "lego-tlsalpn01": ("lego",),
    "acmesh-http01": ("acme.sh", "socat"),
    "acmesh-dns01": ("acme.sh",),
    "acmesh-tlsalpn01": ("acme.sh", "socat"),
    "est-curl": (),
    "est-pki": ("pki",),
}
# Blocks a client block needs run first (besides SETUP).
BEFORE = {name: ("acmesh-hook",) for name in CLIENTS if name.startswith("acmesh-")}


def lab_blocks() -> dict[str, str]:
    """The page's marked shell blocks, by name."""
    return dict(BLOCK.findall(LAB_PAGE.read_text()))


def with_ports(text: str, ports: dict[int, int]) -> str:
    """``text`` with each of the page's port numbers replaced by the lab's own."""
    pattern = r"\b(" + "|".join(str(p) for p in ports) + r")\b"
    return re.sub(pattern, lambda m: str(ports[int(m.group(1))]), text)


class Lab:
    """One lab directory: its blocks (with this lab's ports), environment and processes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ports = {port: free_port() for port in PAGE_PORTS}
        self.blocks = {name: with_ports(text, self.ports) for name, text in lab_blocks().items()}
        self.env = {"PATH": f"{self._shims()}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
        self.background: list[asyncio.subprocess.Process] = []

    def _shims(self) -> Path:
        """A bin directory with ``acme-gateway`` (this checkout) and, if given, ``acme.sh``."""
        shims = self.directory.parent / "bin"
        shims.mkdir()
        targets = {"acme-gateway": f'{sys.executable} -m gateway "$@"'}
        if os.environ.get("ACME_SH"):
            targets["acme.sh"] = f'{os.environ["ACME_SH"]} "$@"'
        for name, command in targets.items():
            (shims / name).write_text(f"#!/bin/sh\nexec {command}\n")
            (shims / name).chmod(0o755)
        return shims

    async def run(self, name: str) -> str:
        """Run block ``name`` to its end; it must succeed. Its output."""
        code, out = await run(["bash", "-euo", "pipefail", "-c",
                               f"cd {self.directory}\n{self.blocks[name]}"], self.env, TIMEOUT)
        assert code == 0, f"lab block {name!r} failed:\n{self.blocks[name]}\n{out}"
        return out

    async def start(self, name: str) -> None:
        """Start block ``name`` in the background, in its own process group."""
        log = (self.directory / f"{name}.log").open("ab")
        self.background.append(await asyncio.create_subprocess_exec(
            "bash", "-c", self.blocks[name], cwd=self.directory, stdout=log, stderr=log,
            env={**os.environ, **self.env}, start_new_session=True))

    async def wait_for_gateway(self) -> None:
        """Until the ACME directory answers over the gateway's own HTTPS certificate."""
        url = f"https://127.0.0.1:{self.ports[8443]}/acme/directory"
        for _ in range(300):
            try:
                context = ssl.create_default_context(
                    cafile=str(self.directory / "lab-data" / "tls" / "server.pem"))
                async with aiohttp.ClientSession() as s, s.get(url, ssl=context) as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, OSError, ssl.SSLError):
                pass
            await asyncio.sleep(0.05)
        raise AssertionError((self.directory / "gateway.log").read_text()[-2000:])

    async def stop(self) -> None:
        """Stop the background blocks (SIGTERM to each process group)."""
        for proc in self.background:
            if proc.returncode is None:
                os.killpg(proc.pid, signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 30)


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    """A running lab: config and hook written, DNS and gateway started."""
    require_tool("pebble-challtestsrv", "curl", "openssl")
    directory = tmp_path / "lab"
    directory.mkdir()
    lab = Lab(directory)
    try:
        await lab.run("config")
        await lab.run("hook")
        await lab.start("dns")
        await lab.start("gateway")
        await lab.wait_for_gateway()
        yield lab
    finally:
        await lab.stop()


def test_every_block_of_the_page_is_run_by_a_test() -> None:
    blocks = set(lab_blocks())
    needed = set(SETUP) | set(CLIENTS) | {b for before in BEFORE.values() for b in before}
    assert blocks == needed


@pytest.mark.parametrize("name", sorted(CLIENTS))
async def test_lab_block_issues_a_certificate(lab: Lab, name: str) -> None:
    tools = CLIENTS[name]
    if "acme.sh" in tools and not os.environ.get("ACME_SH"):
        pytest.skip(ACME_SH_REASON)
    require_tool(*(os.environ["ACME_SH"] if tool == "acme.sh" else tool for tool in tools))
    for before in BEFORE.get(name, ()):
        await lab.run(before)
    out = await lab.run(name)
    # The validator ends its connections politely: no client logs a broken handshake.
    assert "handshake error" not in out.lower(), out
