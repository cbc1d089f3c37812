"""``acme-gateway serve`` that cannot start: one line naming the cause, a non-zero exit at once,
no process left behind, with one process and with ``--workers 2``."""

from __future__ import annotations

import datetime
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from gateway.errors import StartError
from tests.conftest import require_tool
from tests.e2e.harness import free_port, to_toml
from tests.pkix.localca_support import SOFTHSM_LIBRARY

# Interpreter start and imports included; the failure itself ends the process at once.
EXIT_WITHIN_SECONDS = 8.0


def write_config(tmp: Path, doc: dict[str, Any]) -> Path:
    """A config serving on a free port from a data directory in ``tmp``."""
    server = {"data_dir": str(tmp / "data"), "listen": "127.0.0.1",
              "https_port": free_port(), "pkix_http_port": free_port(),
              **doc.pop("server", {})}
    path = tmp / "gateway.toml"
    path.write_text(to_toml({"server": server, **doc}))
    return path


def pkcs12_with_passphrase(tmp: Path, passphrase: bytes) -> Path:
    """A client certificate and key in a PKCS#12 file protected by ``passphrase``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ra-admin")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    path = tmp / "ra-admin.p12"
    path.write_bytes(pkcs12.serialize_key_and_certificates(
        b"ra-admin", key, cert, None, serialization.BestAvailableEncryption(passphrase)))
    (tmp / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another process's socket listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def busy_port_config(tmp: Path, port: int) -> tuple[Path, str]:
    return write_config(tmp, {"server": {"https_port": port}}), f"127.0.0.1:{port}"


def busy_pkix_port_config(tmp: Path, port: int) -> tuple[Path, str]:
    config = write_config(tmp, {"server": {"pkix_http_port": port}})
    return config, f"127.0.0.1:{port} ([server] pkix_http_port)"


def ejbca_tables(tmp: Path, passphrase: str) -> dict[str, Any]:
    """An EJBCA CA (unreachable) whose client certificate is opened with ``passphrase``."""
    p12 = pkcs12_with_passphrase(tmp, b"the right one")
    (tmp / "p12.pass").write_text(passphrase + "\n")
    return {"cas": {"ejbca": {
        "type": "ejbca", "url": "https://127.0.0.1:9/ejbca/ejbca-rest-api",
        "ca_bundle_file": str(tmp / "ca.pem"), "pkcs12_file": str(p12),
        "pkcs12_passphrase_file": str(tmp / "p12.pass"), "ca_name": "IssuingCA",
        "certificate_profile": "TLSServer", "end_entity_profile": "ACME"}},
        "profiles": {"default": {"ca": "ejbca"}}}


def wrong_passphrase_config(tmp: Path, _port: int) -> tuple[Path, str]:
    return write_config(tmp, ejbca_tables(tmp, "a wrong one")), str(tmp / "ra-admin.p12")


def missing_token_config(tmp: Path, _port: int) -> tuple[Path, str]:
    require_tool(SOFTHSM_LIBRARY)
    (tmp / "tokens").mkdir()
    (tmp / "softhsm2.conf").write_text(f"directories.tokendir = {tmp / 'tokens'}\n"
                                       "objectstore.backend = file\nlog.level = ERROR\n")
    (tmp / "pin").write_text("4321\n")
    config = write_config(tmp, {"cas": {"local": {
        "type": "local", "key_backend": "pkcs11", "pkcs11_library": SOFTHSM_LIBRARY,
        "token_label": "gateway-ca", "key_label": "ca-key", "pin_file": str(tmp / "pin")}}})
    return config, "'gateway-ca'"


def unloadable_certificate_config(tmp: Path, _port: int) -> tuple[Path, str]:
    (tmp / "server.pem").write_text("not a certificate\n")
    (tmp / "server.key").write_text("not a key\n")
    config = write_config(tmp, {"server": {"tls_cert_file": str(tmp / "server.pem"),
                                           "tls_key_file": str(tmp / "server.key")}})
    return config, "tls_cert_file"


Case = Callable[[Path, int], tuple[Path, str]]


@pytest.mark.parametrize("workers", [1, 2], ids=["one process", "two workers"])
@pytest.mark.parametrize("case", [busy_port_config, busy_pkix_port_config,
                                  wrong_passphrase_config, missing_token_config,
                                  unloadable_certificate_config],
                         ids=["busy port", "busy CRL/OCSP port", "wrong PKCS#12 passphrase",
                              "missing PKCS#11 token", "unloadable HTTPS certificate"])
def test_a_start_failure_is_one_line_and_a_prompt_non_zero_exit(
        tmp_path: Path, busy_port: int, case: Case, workers: int) -> None:
    config, cause = case(tmp_path, busy_port)
    env = {**os.environ, "SOFTHSM2_CONF": str(tmp_path / "softhsm2.conf")}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "gateway", "serve", "--config", str(config),
                           "--workers", str(workers)], capture_output=True, text=True,
                          timeout=60, env=env)
    elapsed = time.monotonic() - start
    assert done.returncode == StartError.EXIT_STATUS, done.stderr
    said = [line for line in done.stderr.splitlines() if not line.startswith("{")]
    assert len(said) == 1, done.stderr
    assert said[0].startswith("acme-gateway: cannot start: ") and cause in said[0], said
    assert "Traceback" not in done.stderr + done.stdout
    assert elapsed < EXIT_WITHIN_SECONDS
    assert processes_using(config) == []


def processes_using(config: Path) -> list[int]:
    """Processes whose command line names ``config`` (a worker left behind would)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(config).encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("workers", [1, 2], ids=["one process", "two workers"])
def test_a_secret_that_cannot_be_read_is_one_line_and_exit_2(tmp_path: Path,
                                                            workers: int) -> None:
    config = write_config(tmp_path, {"admin": {"token_env": "ACME_GATEWAY_TEST_UNSET"}})
    env = {k: v for k, v in os.environ.items() if k != "ACME_GATEWAY_TEST_UNSET"}
    done = subprocess.run([sys.executable, "-m", "gateway", "serve", "--config", str(config),
                           "--workers", str(workers)], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"acme-gateway: configuration error: {config}: [admin.token_env] environment "
        "variable ACME_GATEWAY_TEST_UNSET is not set"]
    assert processes_using(config) == []
