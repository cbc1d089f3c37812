"""``acme-gateway ca init | info`` with the file key backend."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509

from gateway import cli


def _config(tmp: Path, **ca: str) -> Path:
    extra = "".join(f'{k} = "{v}"\n' for k, v in ca.items())
    path = tmp / "gateway.toml"
    path.write_text(
        f'[server]\ndata_dir = "{tmp / "data"}"\nhttps_port = 0\nhttp_port = 8081\n\n'
        f'[cas.edge]\ntype = "local"\n{extra}\n[profiles.default]\nca = "edge"\n'
    )
    return path


def test_init_then_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, key_type="ec-p384", common_name="Edge CA", organization="Example")
    assert cli.main(["--config", str(config), "ca", "info", "--ca", "edge"]) == 1
    assert "certificate: none (run `acme-gateway ca init --ca edge`)" in capsys.readouterr().out
    assert cli.main(["--config", str(config), "ca", "init", "--ca", "edge"]) == 0
    assert "key: created, file" in capsys.readouterr().out
    ca_dir = tmp_path / "data" / "ca" / "edge"
    assert stat.S_IMODE((ca_dir / "ca.key.pem").stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    assert cert.subject.rfc4514_string() == "CN=Edge CA,O=Example"
    assert cli.main(["--config", str(config), "ca", "info", "--ca", "edge"]) == 0
    out = capsys.readouterr().out
    assert "(ec-p384) — ok" in out and "CN=Edge CA,O=Example" in out
    # plain http:// on the /pkix/ listener (default port 8080), not the API's listener
    assert (
        "http://127.0.0.1:8080/pkix/edge/crl" in out
        and "http://127.0.0.1:8080/pkix/edge/ocsp" in out
    )


def test_init_refuses_to_replace_a_ca_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    assert cli.main(["--config", str(config), "ca", "init", "--ca", "edge"]) == 0
    first = (tmp_path / "data" / "ca" / "edge" / "ca.pem").read_bytes()
    assert cli.main(["--config", str(config), "ca", "init", "--ca", "edge"]) == 1
    assert "already has a certificate" in capsys.readouterr().err
    assert cli.main(["--config", str(config), "ca", "init", "--ca", "edge", "--force"]) == 0
    assert "key: existing" in capsys.readouterr().out
    again = x509.load_pem_x509_certificate(
        (tmp_path / "data" / "ca" / "edge" / "ca.pem").read_bytes()
    )
    assert again.public_key() == x509.load_pem_x509_certificate(first).public_key()


def test_unknown_or_foreign_ca_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    assert cli.main(["--config", str(config), "ca", "info", "--ca", "nope"]) == 1
    assert "no [cas.nope]; configured: edge" in capsys.readouterr().err


def test_ca_status_probes_every_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.e2e.harness import free_port

    password = tmp_path / "pw"
    password.write_text("secret\n")
    config = _config(tmp_path)
    config.write_text(config.read_text() + (
        f'\n[cas.corp]\ntype = "adcs"\nurl = "https://127.0.0.1:{free_port()}/certsrv"\n'
        f'auth = "basic"\nusername = "svc"\npassword_file = "{password}"\nretries = 0\n'))
    assert cli.main(["--config", str(config), "ca", "status"]) == 1  # one CA is down
    out = capsys.readouterr().out
    assert "edge: up  jobs waiting 0" in out
    assert "corp: down  jobs waiting 0" in out and "cannot connect to 127.0.0.1" in out


def test_root_crl_is_signed_anew_by_the_root(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    assert cli.main(["--config", str(config), "ca", "init", "--ca", "edge"]) == 0
    ca_dir = tmp_path / "data" / "ca" / "edge"
    root = x509.load_pem_x509_certificate((ca_dir / "root.pem").read_bytes())

    def number() -> int:
        crl = x509.load_der_x509_crl((ca_dir / "root.crl.der").read_bytes())
        assert crl.is_signature_valid(root.public_key())  # type: ignore[arg-type]
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

    assert number() == 1
    assert cli.main(["--config", str(config), "ca", "root-crl", "--ca", "edge"]) == 0
    assert "root CRL:" in capsys.readouterr().out and number() == 2
    (tmp_path / "s").mkdir()
    single = _config(tmp_path / "s", hierarchy="single")
    assert cli.main(["--config", str(single), "ca", "init", "--ca", "edge"]) == 0
    assert cli.main(["--config", str(single), "ca", "root-crl", "--ca", "edge"]) == 1
    assert "only a two-tier CA has a root CRL" in capsys.readouterr().err
