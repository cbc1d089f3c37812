"""`acme-gateway serve` with an [est] section: the listener asks for client certificates
and trusts the configured anchors; `check-config` reports EST mistakes by key."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.conftest import require_tool
from tests.est.support import Manufacturer, b64, ec_key, free_port, make_csr
from tests.est.test_clients import run

STARTUP_SECONDS = 30.0


def _config(tmp: Path, manufacturer: Manufacturer, port: int, extra: str = "") -> Path:
    path = tmp / "gateway.toml"
    path.write_text(f"""
[server]
data_dir = "{tmp / 'data'}"
listen = "127.0.0.1"
https_port = {port}
pkix_http_port = {free_port()}

[cas.local]
type = "local"

[profiles.default]
ca = "local"
allowed_patterns = ["*.example.net"]

[est.labels.mfg]
profile = "default"
auth = "cert"
client_ca_files = ["{manufacturer.ca_file}"]
cert_names = ["{{serialNumber}}.devices.example.net"]
{extra}
""")
    return path


async def _gateway(*args: str | Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *map(str, args),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)


async def test_serve_accepts_manufacturer_certificate(tmp_path: Path) -> None:
    require_tool("curl")
    manufacturer = Manufacturer(tmp_path)
    port = free_port()
    config = _config(tmp_path, manufacturer, port)
    proc = await _gateway("serve", "--config", config)
    try:
        assert proc.stdout is not None
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), STARTUP_SECONDS)
            assert line, "the gateway exited before listening"
            if line.startswith(b"EST base:"):
                break
        cert, key = manufacturer.device(serial_number="SN-0042")
        server_pem = tmp_path / "data" / "tls" / "server.pem"
        url = f"https://127.0.0.1:{port}/.well-known/est/mfg/simpleenroll"
        for name, status in (("sn-0042.devices.example.net", "200"),
                             ("router01.example.net", "403")):
            (tmp_path / "csr.b64").write_bytes(b64(make_csr(ec_key(), cn=name)))
            out = await run("curl", "--silent", "--show-error", "--cacert", server_pem,
                            "--cert", cert, "--key", key, "-H", "Content-Type: application/pkcs10",
                            "--data-binary", "@csr.b64", "-w", "\\n%{http_code}", url,
                            cwd=tmp_path)
            assert out.rstrip().endswith(status), out
            assert status != "200" or out.startswith("MII")
        assert out.startswith("est:cert:") and "may not request router01.example.net" in out
    finally:
        proc.terminate()
        await proc.wait()


async def test_check_config_names_the_est_key(tmp_path: Path) -> None:
    manufacturer = Manufacturer(tmp_path)
    good = _config(tmp_path, manufacturer, free_port())
    proc = await _gateway("--config", good, "check-config")
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out
    bad = _config(tmp_path, manufacturer, free_port(), 'auth_mode = "x"')
    proc = await _gateway("--config", bad, "check-config")
    out, _ = await proc.communicate()
    assert proc.returncode == 2 and b"[est.labels.mfg.auth_mode] unknown option" in out
