"""loadtest.ari: the certID a client sends and how it reads a renewalInfo answer."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from loadtest import ari

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _leaf(serial: int = 0x87654321) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lt.example")])
    key_id = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(T0).not_valid_after(T0 + dt.timedelta(days=90))
            .add_extension(x509.AuthorityKeyIdentifier(key_id, None, None), False)
            .sign(key, hashes.SHA256()))


def test_cert_id_is_the_rfc_example() -> None:
    assert ari.cert_id(_leaf()) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


def _window(start: str, end: str) -> dict[str, Any]:
    return {"suggestedWindow": {"start": start, "end": end}}


@pytest.mark.parametrize(("info", "verdict"), [
    (_window("2026-02-20T00:00:00Z", "2026-03-10T00:00:00Z"), "ari_scheduled"),
    (_window("2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z"), "ari_due"),
    (_window("2026-03-10T00:00:00Z", "2026-02-20T00:00:00Z"), "ari_bad_window"),
    (_window("2026-02-20T00:00:00Z", "2026-06-01T00:00:00Z"), "ari_bad_window"),  # past expiry
    (_window("soon", "later"), "ari_bad_window"),
    ({"suggestedWindow": {"start": 1, "end": 2}}, "ari_bad_window"),
    ({}, "ari_bad_window"),
])
def test_judge(info: dict[str, Any], verdict: str) -> None:
    assert ari.judge(info, _leaf(), T0 + dt.timedelta(days=10)) == verdict
