"""``scripts/serve.sh``: install only when needed, then start without the network.

The stamp cases run the real script against a stub ``install.sh`` and a stub
``acme-gateway``: they show when the script installs. The start test runs the
real script and the real gateway in a network namespace that has only loopback.
Its checkout is a copy of this one with a throwaway venv that is "installed" by
hand (a ``.pth`` naming the copy and the shared venv's site-packages, the
console script, the stamp) because a real ``pip install`` needs the network
this test takes away; what it proves is that an installed checkout starts
offline and fast.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import in_ci, require_tool

ROOT = Path(__file__).resolve().parents[2]
START_LIMIT_SECONDS = 2.0

STUB_INSTALL = """#!/usr/bin/env bash
set -e
cd "$(dirname "$0")/.."
echo INSTALL
mkdir -p .venv/bin
printf '#!/bin/sh\\necho serve-args: "$@"\\n' > .venv/bin/acme-gateway
chmod +x .venv/bin/acme-gateway
sha256sum pyproject.toml | cut -d' ' -f1 > .venv/.installed-from
"""


def pyproject_digest(checkout: Path) -> str:
    """What install.sh writes into the stamp."""
    return hashlib.sha256((checkout / "pyproject.toml").read_bytes()).hexdigest()


def write_executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def stub_checkout(tmp: Path) -> Path:
    """A checkout with the real serve.sh and pyproject.toml, a stub installer, no venv."""
    (tmp / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "serve.sh", tmp / "scripts" / "serve.sh")
    shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    write_executable(tmp / "scripts" / "install.sh", STUB_INSTALL)
    return tmp


def installed(checkout: Path) -> None:
    subprocess.run(["bash", "scripts/install.sh"], cwd=checkout, check=True,
                   capture_output=True)


def no_venv(checkout: Path) -> None:
    pass


def stamp_missing(checkout: Path) -> None:
    installed(checkout)
    (checkout / ".venv" / ".installed-from").unlink()


def pyproject_changed(checkout: Path) -> None:
    installed(checkout)
    with (checkout / "pyproject.toml").open("a") as f:
        f.write("\n# a new dependency\n")


@pytest.mark.parametrize(("prepare", "installs"), [
    (installed, False),
    (no_venv, True),
    (stamp_missing, True),
    (pyproject_changed, True),
])
def test_installs_only_when_missing_or_stale(tmp_path: Path, prepare: object,
                                             installs: bool) -> None:
    checkout = stub_checkout(tmp_path)
    prepare(checkout)  # type: ignore[operator]
    done = subprocess.run(["bash", "scripts/serve.sh", "--config", "x.toml"], cwd=checkout,
                          capture_output=True, text=True, check=True)
    assert ("INSTALL" in done.stdout) is installs, done.stdout
    assert done.stdout.rstrip().endswith("serve-args: serve --config x.toml"), done.stdout
    assert (checkout / ".venv" / ".installed-from").read_text().strip() \
        == pyproject_digest(checkout)


def require_namespaces() -> None:
    """Skip (fail under CI) unless this process may create a network namespace."""
    require_tool("unshare", "ip")
    if os.geteuid() == 0:
        return
    reason = "needs root to create a network namespace (unshare -n)"
    if in_ci():
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def installed_copy(tmp: Path) -> Path:
    """A copy of this checkout whose .venv runs the copy with the shared venv's packages."""
    checkout = tmp / "checkout"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("gateway", "connectors", "loadtest", "scripts"):
        shutil.copytree(ROOT / part, checkout / part, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", checkout / "pyproject.toml")
    venv = checkout / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                              "'purelib'))"], capture_output=True, text=True, check=True)
    dependencies = Path(aiohttp.__file__).resolve().parents[1]
    Path(purelib.stdout.strip(), "acme_gateway.pth").write_text(f"{checkout}\n{dependencies}\n")
    write_executable(venv / "bin" / "acme-gateway",
                     f"#!{python}\nimport sys\nfrom gateway.cli import main\nsys.exit(main())\n")
    (venv / ".installed-from").write_text(pyproject_digest(checkout) + "\n")
    return checkout


def test_installed_checkout_serves_offline_within_two_seconds(tmp_path: Path) -> None:
    require_namespaces()
    checkout = installed_copy(tmp_path)
    # Loopback only: a pip run would fail or retry for half a minute in here. The
    # namespace has its own ports, so the README's default 127.0.0.1:8443 is free.
    script = (f"ip link set lo up && exec {sys.executable} -m tests.scripts.serve_probe "
              f"{checkout} 8443")
    done = subprocess.run(["unshare", "-n", "sh", "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    elapsed, _, output = done.stdout.partition("\n")
    assert elapsed != "timeout", output + done.stderr
    assert float(elapsed) < START_LIMIT_SECONDS, output
    assert "pip" not in output and "installing" not in output, output
    for line in ("ACME directory: https://127.0.0.1:8443/acme/directory",
                 f"Issuing CA 'local' (local): {checkout}/gateway-data/ca/local/ca.pem",
                 f"HTTPS certificate (self-signed, the trust anchor): {checkout}/gateway-data"):
        assert line in output, output
