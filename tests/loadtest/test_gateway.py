"""``python -m loadtest`` against ``acme-gateway serve``: ACME with real HTTP-01, EST over TLS.

The gateway runs as its own process from a TOML config: loopback allowed for
validation, HTTP-01 checked on the load generator's responder port, and names
resolved by the load generator's DNS responder (which answers 127.0.0.1). EST
needs HTTPS: the gateway gets a self-signed server certificate and an EST label
``bench`` that trusts one self-signed client certificate.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from loadtest.cli import execute
from loadtest.pebble import self_signed
from tests.loadtest.conftest import free_port, spawn, tail


def write_tls_files(tmp_path: Path) -> None:
    """server.pem/.key for the gateway, client.pem/.key for EST clients."""
    for name, subject, ips in (("server", "localhost", ["127.0.0.1"]), ("client", "router-1", [])):
        cert, key = self_signed([subject], ips)
        (tmp_path / f"{name}.pem").write_bytes(cert)
        (tmp_path / f"{name}.key").write_bytes(key)


def gateway_config(tmp_path: Path, ports: dict[str, int], extra: str = "") -> Path:
    """Embedded SQLite + local CA; ACME over HTTP, EST over HTTPS; then ``extra`` TOML."""
    write_tls_files(tmp_path)
    path = tmp_path / "gateway.toml"
    path.write_text(f"""
[server]
data_dir = "{tmp_path / "data"}"
listen = "127.0.0.1"
https_port = {ports["https"]}
http_port = {ports["http"]}
pkix_http_port = {free_port()}
tls_cert_file = "{tmp_path / "server.pem"}"
tls_key_file = "{tmp_path / "server.key"}"
log_level = "warning"
access_log = false

[acme]
retry_after_seconds = 1

[validation]
allow_loopback = true
http01_port = {ports["http01"]}
resolvers = ["127.0.0.1:{ports["dns"]}"]

# One load generator on loopback is one client address placing many orders.
[rate_limits]
enabled = false

[est.labels.bench]
profile = "default"
auth = "cert"
client_ca_files = ["{tmp_path / "client.pem"}"]
names = ["*.loadtest.test"]
""" + extra)
    return path


async def wait_for_directory(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll the directory until it answers; fail early when the gateway exits."""
    async with aiohttp.ClientSession() as http:
        for _ in range(150):
            if process.poll() is not None:
                pytest.fail(f"acme-gateway exited: {tail(log)}")
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail("acme-gateway did not serve its directory within 15 s")


def stop(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Terminate (SIGTERM) and reap a gateway; kill it if it does not stop in time."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class RunningGateway:
    """Ports and process of a gateway started for one test."""

    def __init__(self, tmp_path: Path, serve_args: tuple[str, ...] = (),
                 extra_toml: str = "") -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        self.https_port = free_port()
        self.http01_port = free_port()
        self.dns_port = free_port(socket.SOCK_DGRAM)
        ports = {
            "http": self.port,
            "https": self.https_port,
            "http01": self.http01_port,
            "dns": self.dns_port,
        }
        self.config = gateway_config(tmp_path, ports, extra_toml)
        self.log = tmp_path / "gateway.log"
        self.directory = f"http://127.0.0.1:{self.port}/acme/directory"
        argv = [sys.executable, "-m", "gateway", "--config", str(self.config), "serve",
                *serve_args]
        self.process = spawn(argv, dict(os.environ), self.log)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    running = RunningGateway(tmp_path)
    try:
        await wait_for_directory(running.directory, running.process, running.log)
        yield running
    finally:
        stop(running.process)


@pytest.mark.parametrize("challenge", ["http-01", "dns-01"])
async def test_loadtest_issues_from_the_gateway(
    gateway: RunningGateway, tmp_path: Path, challenge: str
) -> None:
    argv = [
        "acme",
        "--challenge",
        challenge,
        "--directory",
        gateway.directory,
        "-n",
        "6",
        "-c",
        "3",
        "--names",
        "2",
        "--http01-port",
        str(gateway.http01_port),
        "--dns-port",
        str(gateway.dns_port),
        "--server-pid",
        str(gateway.process.pid),
        "--timeout",
        "30",
        "--quiet",
        "--json",
        str(tmp_path / "gw.json"),
    ]
    status, result = await execute(argv)
    assert result is not None
    assert status == 0, result["error_samples"]
    assert result["certificates_issued"] == 6
    assert result["latency_ms"]["validation"]["count"] == 12
    cpu = result["server_cpu"]
    assert cpu["certificates"] == 6 and cpu["cpu_ms"] > 0


async def test_profiles_reach_the_gateway(gateway: RunningGateway, tmp_path: Path) -> None:
    common = [
        "acme",
        "--directory",
        gateway.directory,
        "-n",
        "2",
        "--timeout",
        "30",
        "--quiet",
        "--http01-port",
        str(gateway.http01_port),
        "--dns-port",
        str(gateway.dns_port),
    ]
    status, known = await execute([*common, "--profile", "default"])
    assert status == 0 and known is not None and known["certificates_issued"] == 2
    status, unknown = await execute([*common, "--profile", "no-such-profile"])
    assert status == 1 and unknown is not None
    assert unknown["succeeded"] == 0 and sum(unknown["errors"].values()) == 2
    # The refusal is an ACME problem document, counted by its type.
    assert not any(kind.startswith("http-") for kind in unknown["errors"]), unknown["errors"]


@pytest.mark.parametrize("new_connections", [False, True])
async def test_est_enrolls_at_the_gateway_with_a_client_certificate(
    gateway: RunningGateway, new_connections: bool
) -> None:
    tls = gateway.tmp_path
    argv = [
        "est",
        "--url",
        f"https://127.0.0.1:{gateway.https_port}",
        "--label",
        "bench",
        "--cafile",
        str(tls / "server.pem"),
        "--client-cert",
        str(tls / "client.pem"),
        "--client-key",
        str(tls / "client.key"),
        "-n",
        "6",
        "-c",
        "3",
        "--timeout",
        "30",
        "--server-pid",
        str(gateway.process.pid),
        "--quiet",
    ]
    if new_connections:
        argv.append("--new-connection-per-request")
    status, result = await execute(argv)
    assert result is not None
    assert status == 0, result["error_samples"]
    assert result["certificates_issued"] == 6
    assert result["server_cpu"]["certificates"] == 6


async def test_loadtest_reads_renewal_information(gateway: RunningGateway) -> None:
    argv = ["acme", "--directory", gateway.directory, "-n", "3", "--ari", "--timeout", "30",
            "--quiet", "--http01-port", str(gateway.http01_port),
            "--dns-port", str(gateway.dns_port)]
    status, result = await execute(argv)
    assert status == 0 and result is not None, result
    assert result["counters"]["ari_scheduled"] == 3, result["counters"]
    assert result["latency_ms"]["renewalInfo"]["count"] == 3
