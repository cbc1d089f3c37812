"""The PKCS#11 key backend under ``serve --workers 4``: every worker opens the token, none fails."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from gateway import cli
from tests.conftest import require_tool
from tests.e2e.harness import free_port, to_toml
from tests.pkix.localca_support import SOFTHSM_LIBRARY, SoftHSM, softhsm

WORKERS = 4
STARTS = 20
START_TIMEOUT = 60.0


@pytest.fixture
def hsm() -> SoftHSM:
    """The process's SoftHSM tokens (skipped, or failed under CI, without SoftHSM)."""
    require_tool("softhsm2-util", SOFTHSM_LIBRARY)
    return softhsm()


def _config(tmp: Path, hsm: SoftHSM) -> Path:
    path = tmp / "gateway.toml"
    path.write_text(to_toml({
        "server": {"data_dir": str(tmp / "data"), "https_port": 0, "http_port": free_port(),
                   "pkix_http_port": free_port(), "log_level": "info", "access_log": False},
        "cas": {"hsm": {"type": "local", "key_backend": "pkcs11",
                        "pkcs11_library": SOFTHSM_LIBRARY, "token_label": "workers",
                        "key_label": "workers-ca", "pin_file": str(hsm.pin_file)}},
        "profiles": {"default": {"ca": "hsm"}},
    }))
    return path


async def _start_and_stop(config: Path) -> str:
    """Serve with WORKERS workers until all say they serve (or one dies); the log."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--config", str(config),
        "--workers", str(WORKERS), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, env={**os.environ})
    assert proc.stderr is not None
    lines: list[str] = []
    serving = 0
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while serving < WORKERS:
                line = (await proc.stderr.readline()).decode()
                if not line:
                    break  # the gateway exited
                lines.append(line)
                serving += f"of {WORKERS} serving" in line
                if "exited unexpectedly" in line:
                    break
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        rest = await proc.stderr.read()
        await proc.wait()
    return "".join(lines) + rest.decode()


async def test_workers_open_the_token_without_racing(tmp_path: Path, hsm: SoftHSM) -> None:
    config = _config(tmp_path, hsm)
    assert await asyncio.to_thread(cli.main, ["--config", str(config), "ca", "init",
                                              "--ca", "hsm"]) == 0
    for start in range(STARTS):
        log = await _start_and_stop(config)
        assert log.count(f"of {WORKERS} serving") == WORKERS, f"start {start + 1}:\n{log}"
        assert "exited unexpectedly" not in log and "Traceback" not in log, log
