"""Unit tests of the EST building blocks: settings, passwords, body decoding, DER answers."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from gateway import config
from gateway.errors import ConfigError, GatewayError
from gateway.est import wire
from gateway.est.passwords import check_hash_format, hash_password, verify_password
from gateway.est.pkcs7 import OID_EC, OID_P256, csr_attributes, parse_csr_attributes
from gateway.est.settings import parse

PROFILES = {"default": {"ca": "local"}, "routers": {"ca": "local"}}


def _settings(est: dict[str, Any], tmp: Path) -> config.Settings:
    doc = {"server": {"data_dir": str(tmp)}, "cas": {"local": {"type": "local"}},
           "profiles": PROFILES, "est": est}
    return config.parse(doc, "gw.toml")


HASH = hash_password("pw", 1000)


@pytest.mark.parametrize("est,key", [
    ({"labels": {"a": {"profile": "nope"}}}, "est.labels.a.profile"),
    ({"labels": {"a": {"auth": "token"}}}, "est.labels.a.auth"),
    ({"labels": {"a": {"users": ["ghost"]}}}, "est.labels.a.users"),
    ({"labels": {"a": {"colour": "red"}}}, "est.labels.a.colour"),
    ({"labels": {"a": {"client_ca_files": ["/nonexistent.pem"]}}},
     "est.labels.a.client_ca_files"),
    ({"labels": {"simpleenroll": {}}}, "est.labels.simpleenroll"),
    ({"users": {"alice": "plain text"}}, "est.users.alice"),
    ({"users": {"alice": {"password": "plain text"}}}, "est.users.alice.password"),
    ({"users": {"alice": {"password": HASH, "names": "*.example.net"}}},
     "est.users.alice.names"),
    ({"users": {"alice": {"password": HASH, "name": ["x"]}}}, "est.users.alice.name"),
    ({"users": {"alice": {"password": HASH, "names": ["re:(("]}}}, "est.users.alice.names"),
    ({"labels": {"a": {"cert_names": ["{mac}.example.net"]}}}, "est.labels.a.cert_names"),
    ({"labels": {"a": {"cert_names": ["re:.*"]}}}, "est.labels.a.cert_names"),
    ({"labels": {"a": {"trust_issuing_ca": "yes"}}}, "est.labels.a.trust_issuing_ca"),
    ({"default_label": "x", "labels": {"a": {}}}, "est.default_label"),
    ({"unknown": 1}, "est.unknown"),
])
def test_config_errors_name_file_and_key(tmp_path: Path, est: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(_settings(est, tmp_path))
    assert err.value.source == "gw.toml" and err.value.key == key


def test_defaults(tmp_path: Path) -> None:
    est = parse(_settings({"labels": {"default": {}, "b": {"auth": "basic"}}}, tmp_path))
    assert est.label(None) is est.labels["default"]
    assert est.labels["default"].profile == "default" and est.labels["default"].auth == "cert"
    assert est.labels["b"].base64_line_length == 64 and not est.labels["b"].proof_of_possession
    assert parse(_settings({}, tmp_path)).labels == {}
    # Nothing is granted by default: no names, no trust in the label's own issuing CA.
    label = est.labels["default"]
    assert (label.names, label.cert_names, label.trust_issuing_ca) == ((), (), False)


def test_user_forms(tmp_path: Path) -> None:
    hashed = hash_password("pw", 1000)
    est = parse(_settings({"users": {"short": hashed, "full": {
        "password": hashed, "names": ["*.Branch.example.net", "re:r[0-9]+\\.example\\.net"]}}},
        tmp_path))
    assert est.users["short"].password_hash == hashed and est.users["short"].names == ()
    assert est.users["full"].names == ("*.branch.example.net", "re:r[0-9]+\\.example\\.net")


def test_password_hashes() -> None:
    encoded = hash_password("pw", 1000)
    assert check_hash_format(encoded) and encoded.startswith("pbkdf2-sha256$1000$")
    assert verify_password("pw", encoded) and not verify_password("pW", encoded)
    assert hash_password("pw", 1000) != encoded  # salted
    assert not check_hash_format("pbkdf2-sha256$10$c2FsdA==$eA==")


def test_hash_password_command(capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from gateway.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    assert main(["est", "hash-password", "--stdin", "--iterations", "1000"]) == 0
    assert verify_password("s3cret", capsys.readouterr().out.strip())


DER = bytes.fromhex("3003020101")


@pytest.mark.parametrize("body", [
    base64.b64encode(DER), b" MAMC\r\n AQE=\t\n", b"-----BEGIN X-----\nMAMCAQE=\n-----END X-----\n",
    DER, base64.b64encode(DER) + b"\r\n\0\xff junk", b"MAMCAQE",  # missing padding
])
def test_decode_body_variants(body: bytes) -> None:
    assert wire.decode_body(body) == DER


@pytest.mark.parametrize("last", [0x00, 0x09, 0x0A, 0x0D, 0x20])
def test_decode_body_keeps_der_ending_in_a_blank_byte(last: int) -> None:
    # A signature's last byte is one of these in about one CSR in fifty.
    der = bytes([0x30, 0x03, 0x02, 0x01, last])
    assert wire.decode_body(der) == der
    assert wire.decode_body(b"\r\n" + der + b"\r\n\0junk") == der


@pytest.mark.parametrize("der", [
    bytes([0x30, 0x81, 0x80]) + bytes(128),  # long-form length
    bytes([0x30, 0x82, 0x01, 0x00]) + bytes(256),
])
def test_decode_body_der_extent(der: bytes) -> None:
    assert wire.decode_body(der + b"\n") == der


def test_decode_body_leaves_truncated_der_to_the_csr_parser() -> None:
    short = bytes([0x30, 0x82, 0x01, 0x00]) + bytes(10)
    assert wire.decode_body(short) == short


@pytest.mark.parametrize("body", [b"", b"  \r\n", b"%%%", b"\xff\xfe"])
def test_decode_body_refusals(body: bytes) -> None:
    with pytest.raises(GatewayError):
        wire.decode_body(body)


def test_base64_line_layout() -> None:
    data = bytes(range(256))
    assert all(len(line) <= 64 for line in wire.b64_lines(data, 64).split(b"\r\n"))
    assert wire.b64_lines(data, 0).count(b"\r\n") == 1
    assert max(len(x) for x in wire.b64_lines(data, 76).split(b"\r\n")) == 76


def test_csrattrs_for_ec_profile() -> None:
    profile = config.ProfileSettings("p", "local", key_types=("ec",))
    attrs = parse_csr_attributes(csr_attributes(profile, False))
    assert (OID_EC, [bytes.fromhex("06082a8648ce3d030107")]) in attrs
    assert OID_P256 not in attrs and "2.5.29.17" in attrs
