"""The start banner: trust anchor and CA certificates with fingerprints, URLs, data, logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from gateway import banner, config, tls


def settings(data_dir: Path, **tables: Any) -> config.Settings:
    return config.parse({"server": {"data_dir": str(data_dir)}, **tables}, "test.toml")


def sha256(pem_file: Path) -> str:
    cert = x509.load_pem_x509_certificates(pem_file.read_bytes())[0]
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def test_banner_names_trust_anchor_ca_urls_data_and_logs(tmp_path: Path) -> None:
    s = settings(tmp_path / "data")
    server_pem = tls.ensure_self_signed(s.server)
    ca_pem = tmp_path / "data" / "ca" / "local" / "ca.pem"
    ca_pem.parent.mkdir(parents=True)
    ca_pem.write_bytes(server_pem.read_bytes())  # any certificate will do for the fingerprint

    text = banner.render(s, ["https://127.0.0.1:8443"], server_pem, self_signed=True)

    for expected in (
        f"HTTPS certificate (self-signed, the trust anchor): {server_pem.resolve()}",
        f"REQUESTS_CA_BUNDLE={server_pem.resolve()}",
        f"Issuing CA 'local' (local): {ca_pem.resolve()}",
        f"  sha256 {sha256(ca_pem)}",
        "ACME directory: https://127.0.0.1:8443/acme/directory",
        "EST base:       https://127.0.0.1:8443/.well-known/est/",
        f"Data:    {(tmp_path / 'data').resolve()} (store sqlite:///",
        "Logs:    JSON lines on stderr",
    ):
        assert expected in text, text
    assert text.count(f"sha256 {sha256(server_pem)}") == 2  # the same file twice, here


def test_missing_ca_certificate_is_said_not_fatal(tmp_path: Path) -> None:
    s = settings(tmp_path / "data", storage={"url": "sqlite:///" + str(tmp_path / "x.db")})
    text = banner.render(s, [], None, self_signed=True)
    assert "HTTPS certificate" not in text
    assert "Issuing CA 'local' (local)" in text and "(unreadable:" in text
    assert f"store sqlite:///{tmp_path / 'x.db'}" in text


def test_operator_certificate_has_no_trust_hint(tmp_path: Path) -> None:
    s = settings(tmp_path / "data")
    pem = tls.ensure_self_signed(s.server)
    lines = banner.https_lines(pem, self_signed=False)
    assert lines == [f"HTTPS certificate (from tls_cert_file): {pem.resolve()}",
                     f"  sha256 {sha256(pem)}"]


def test_banner_lists_scep_urls_and_the_ra_certificate(tmp_path: Path) -> None:
    from gateway.scep.ra import load_or_create

    s = settings(tmp_path / "data", scep={"labels": {"phones": {"one_time_passwords": True}}})
    load_or_create(tmp_path / "data" / "scep-ra.key", tmp_path / "data" / "scep-ra.pem")
    text = banner.render(s, ["https://127.0.0.1:8443", "http://127.0.0.1:8080"], None, False)
    ra_pem = (tmp_path / "data" / "scep-ra.pem").resolve()
    assert "SCEP:           http://127.0.0.1:8080/scep/phones/pkiclient.exe" in text
    assert f"SCEP RA certificate: {ra_pem}\n  sha256 {sha256(ra_pem)}" in text
    assert "SCEP" not in banner.render(settings(tmp_path / "other"), ["http://x"], None, False)
