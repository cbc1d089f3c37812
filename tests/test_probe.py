"""``check-config --probe``: every port, key, token and CA the config names, one line each."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from gateway.app import prepare
from gateway.cli import main
from gateway.config import load
from tests.test_cli import ejbca_tables, unloadable_certificate_config, write_config


def probe(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["--config", str(config), "check-config", "--probe"])
    return code, capsys.readouterr().out.splitlines()


def test_a_working_config_reports_ok_for_each_item(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, {})
    asyncio.run(prepare(load(config)))  # the local CA exists, as after a first start
    code, lines = probe(config, capsys)
    assert code == 0
    assert [line.split(":")[0].split()[0] for line in lines[:-1]] == [
        "[server]", "[server]", "[cas.local]"]
    assert all(line.endswith(": ok") for line in lines[:-1]), lines
    assert lines[-1] == f"{config}: OK"


def test_the_probe_does_not_create_a_local_ca(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, {})
    code, lines = probe(config, capsys)
    assert code == 0
    assert "[cas.local] (local CA, made on first start): ok" in lines
    assert not (tmp_path / "data" / "ca").exists()


@pytest.mark.parametrize("passphrase,failure", [
    ("a wrong one", "[cas.ejbca]: FAILED: cannot open pkcs12_file"),
    ("the right one", "[cas.ejbca]: FAILED: EJBCA health check: cannot connect to 127.0.0.1:9"),
], ids=["wrong PKCS#12 passphrase", "CA endpoint unreachable"])
def test_a_ca_that_cannot_start_or_answer_fails_the_probe(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], passphrase: str,
        failure: str) -> None:
    code, lines = probe(write_config(tmp_path, ejbca_tables(tmp_path, passphrase)), capsys)
    assert code == 1
    assert any(line.startswith(failure) for line in lines), lines
    assert lines[-1].endswith("1 of 3 FAILED")


def test_a_busy_port_fails_the_probe(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, lines = probe(write_config(tmp_path, {"server": {"https_port": port}}), capsys)
    assert code == 1
    assert lines[0].startswith(f"[server] https_port {port}: FAILED: cannot listen on "
                               f"127.0.0.1:{port}")


def test_an_unloadable_https_certificate_fails_the_probe(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = unloadable_certificate_config(tmp_path, 0)
    code, lines = probe(config, capsys)
    assert code == 1
    assert lines[1].startswith(f"[server] tls_cert_file {tmp_path / 'server.pem'} / "
                               f"tls_key_file {tmp_path / 'server.key'}: FAILED: cannot load")
