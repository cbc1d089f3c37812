"""Run the real gateway (``python -m gateway serve``) and real clients on loopback.

Shared by every end-to-end test: a free port, a TOML writer, the gateway as a
subprocess that can be stopped and restarted on the same data directory, and
``pebble-challtestsrv`` as the DNS server for DNS-01 and name lookups.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return json.dumps(str(v))


def to_toml(doc: dict[str, Any], prefix: str = "") -> str:
    """A minimal TOML writer for test configs (nested tables, scalars, lists)."""
    lines = [f"{k} = {_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in doc.items():
        if isinstance(v, dict):
            name = f"{prefix}.{k}" if prefix else k
            out += f"\n[{name}]\n" + to_toml(v, name)
    return out


async def run(cmd: list[str], env: dict[str, str] | None = None,
              timeout: float = 120.0) -> tuple[int, str]:
    """Run a command; return its exit code and combined output."""
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})})
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        return -1, out.decode(errors="replace") + "\n[timed out]"
    return proc.returncode or 0, out.decode(errors="replace")


class ChallTestSrv:
    """pebble-challtestsrv serving DNS (A records → 127.0.0.1, TXT on demand)."""

    def __init__(self) -> None:
        self.dns_port = free_port()
        self.mgmt_port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start it and wait until its management API answers."""
        self.proc = await asyncio.create_subprocess_exec(
            "pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
            "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "", "-https01", "",
            "-tlsalpn01", "", "-management", f"127.0.0.1:{self.mgmt_port}",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        for _ in range(100):
            try:
                await self._post("set-default-ipv4", {"ip": "127.0.0.1"})
                return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
        raise RuntimeError("pebble-challtestsrv did not start")

    async def _post(self, path: str, body: dict[str, Any]) -> None:
        async with aiohttp.ClientSession() as s:
            async with s.post(f"http://127.0.0.1:{self.mgmt_port}/{path}", json=body) as r:
                r.raise_for_status()

    async def set_txt(self, host: str, value: str) -> None:
        """Publish a TXT record (host with a trailing dot)."""
        await self._post("set-txt", {"host": host, "value": value})

    def exec_script(self, directory: Path) -> Path:
        """A script for lego's `exec` DNS provider that publishes through this server."""
        script = directory / "dns-exec.sh"
        api = f"http://127.0.0.1:{self.mgmt_port}"
        script.write_text(
            "#!/bin/sh\n"
            f'case "$1" in\n'
            f'present) curl -sf -X POST -d "{{\\"host\\":\\"$2\\",\\"value\\":\\"$3\\"}}" '
            f"{api}/set-txt ;;\n"
            f'cleanup) curl -sf -X POST -d "{{\\"host\\":\\"$2\\"}}" {api}/clear-txt ;;\n'
            "esac\n")
        script.chmod(0o755)
        return script

    async def stop(self) -> None:
        """Stop the server."""
        if self.proc and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


class GatewayProcess:
    """``python -m gateway serve`` on loopback, restartable on the same data directory."""

    def __init__(self, workdir: Path, doc: dict[str, Any]) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.doc = {**doc, "server": {"data_dir": str(workdir / "data"), "listen": "127.0.0.1",
                                      "https_port": self.port, "pkix_http_port": free_port(),
                                      **doc.get("server", {})}}
        self.config = workdir / "gateway.toml"
        self.config.write_text(to_toml(self.doc))
        self.proc: asyncio.subprocess.Process | None = None
        self.log = workdir / "gateway.log"

    @property
    def directory(self) -> str:
        """The ACME directory URL."""
        return f"https://127.0.0.1:{self.port}/acme/directory"

    @property
    def tls_cert(self) -> Path:
        """The self-signed HTTPS certificate clients must trust."""
        return self.workdir / "data" / "tls" / "server.pem"

    @property
    def ca_cert(self) -> Path:
        """The local CA's certificate."""
        return self.workdir / "data" / "ca" / "local" / "ca.pem"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting the gateway's HTTPS certificate."""
        return ssl.create_default_context(cafile=str(self.tls_cert))

    async def start(self) -> None:
        """Start and wait until the directory answers."""
        log = self.log.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "serve", "--config", str(self.config),
            stdout=log, stderr=log, cwd=self.workdir)
        for _ in range(200):
            if self.proc.returncode is not None:
                raise RuntimeError(f"gateway exited: {self.log.read_text()[-2000:]}")
            try:
                async with aiohttp.ClientSession() as s:
                    async with s.get(self.directory, ssl=self.ssl_context()) as r:
                        if r.status == 200:
                            return
            except (aiohttp.ClientError, OSError, ssl.SSLError):
                await asyncio.sleep(0.05)
        raise RuntimeError("gateway did not answer in time")

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the gateway (SIGTERM: graceful; SIGKILL: a crash)."""
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(sig)
            await asyncio.wait_for(self.proc.wait(), 30)

    async def restart(self) -> None:
        """Stop gracefully and start again on the same data directory and port."""
        await self.stop()
        await self.start()


async def fetch_crl(leaf: x509.Certificate, tls_cert: Path) -> x509.CertificateRevocationList:
    """The CRL at the distribution point a certificate names, fetched over the gateway's TLS."""
    dp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    url = dp[0].full_name[0].value  # type: ignore[index,union-attr]
    ctx = ssl.create_default_context(cafile=str(tls_cert))
    async with aiohttp.ClientSession() as session, session.get(url, ssl=ctx) as resp:
        assert resp.status == 200 and resp.content_type == "application/pkix-crl"
        return x509.load_der_x509_crl(await resp.read())
