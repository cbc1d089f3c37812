"""Start ``scripts/serve.sh`` in a checkout and time until its ACME directory answers.

Run as ``python -m tests.scripts.serve_probe CHECKOUT PORT`` inside a network
namespace that has only loopback: it prints the seconds from launch to the first
``200`` (or ``timeout``), then the script's output, and stops the gateway.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

LIMIT_SECONDS = 30.0


def directory_answers(url: str) -> bool:
    """True once ``url`` answers 200 over TLS (the certificate is the gateway's fresh one)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, context=context, timeout=1) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def main(checkout: str, port: str) -> int:
    """Launch, poll, report; the gateway is stopped whatever happens."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the checkout's own venv
    start = time.monotonic()
    proc = subprocess.Popen(["bash", "scripts/serve.sh"], cwd=checkout, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"https://127.0.0.1:{port}/acme/directory"
    elapsed = None
    while time.monotonic() - start < LIMIT_SECONDS and proc.poll() is None:
        if directory_answers(url):
            elapsed = time.monotonic() - start
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    try:
        output, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
    print("timeout" if elapsed is None else f"{elapsed:.3f}")
    print(output.decode(errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
