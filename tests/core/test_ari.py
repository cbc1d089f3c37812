"""gateway.core.ari: certIDs (RFC 9773 §4.1) and renewal windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.core import ari
from gateway.errors import ErrorKind, GatewayError

# The example of RFC 9773 §4.1: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:
# DE:01:C8:D4 and serial 0x87654321 (DER content 00 87 65 43 21).
RFC_KEY_ID = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
RFC_CERT_ID = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _leaf(serial: int, key_id: bytes | None = RFC_KEY_ID) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ari.example")])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(serial)
               .not_valid_before(T0).not_valid_after(T0 + timedelta(days=90)))
    if key_id is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier(key_id, None, None), False)
    return builder.sign(key, hashes.SHA256())


def test_rfc_example() -> None:
    assert ari.cert_id(_leaf(0x87654321)) == RFC_CERT_ID
    parsed = ari.parse_cert_id(RFC_CERT_ID)
    assert parsed == ari.CertId(RFC_KEY_ID, 0x87654321)
    assert parsed.serial_hex == "87654321" and parsed.text == RFC_CERT_ID


@pytest.mark.parametrize("serial", [1, 0x7F, 0x80, 0xFF, 0x0100, 2**159 - 1])
def test_round_trip(serial: int) -> None:
    text = ari.cert_id(_leaf(serial))
    assert text is not None and ari.parse_cert_id(text).serial == serial


def test_no_authority_key_identifier_has_no_cert_id() -> None:
    assert ari.cert_id(_leaf(5, key_id=None)) is None


@pytest.mark.parametrize("text", [
    "", ".", "aYhba4dGQEHhs3uEe6CuLN4ByNQ", "aYhba4dGQEHhs3uEe6CuLN4ByNQ.",
    ".AIdlQyE", "aYhba4dGQEHhs3uEe6CuLN4ByNQ=.AIdlQyE", "a+b.AIdlQyE",
    "aYhba4dGQEHhs3uEe6CuLN4ByNQ.gA",      # 0x80: a negative INTEGER
    "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AAE",     # 00 01: not minimal DER
    "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE.x",
])
def test_malformed_cert_ids(text: str) -> None:
    with pytest.raises(GatewayError) as refused:
        ari.parse_cert_id(text)
    assert refused.value.kind is ErrorKind.MALFORMED


@pytest.mark.parametrize(("start", "end"), [(0.6, 0.9), (0.5, 0.75), (0.0, 1.0)])
def test_window_is_half_of_the_profile_span(start: float, end: float) -> None:
    nb, na = T0, T0 + timedelta(days=90)
    for serial in ("1", "abc", "ffee01"):
        w = ari.scheduled_window(nb, na, serial, start, end)
        span = (nb + (na - nb) * start, nb + (na - nb) * end)
        assert span[0] <= w.start < w.end <= span[1]
        assert abs((w.end - w.start) - (span[1] - span[0]) / 2) < timedelta(seconds=1)
        assert w == ari.scheduled_window(nb, na, serial, start, end)  # stable per certificate


def test_windows_spread_over_the_span() -> None:
    nb, na = T0, T0 + timedelta(days=90)
    starts = {ari.scheduled_window(nb, na, format(s, "x"), 0.6, 0.9).start for s in range(200)}
    earliest, latest = min(starts), max(starts)
    assert latest - earliest > timedelta(days=12)  # of the 13.5 days a start may move


def test_past_window_has_closed() -> None:
    w = ari.past_window(T0, "https://status.example/incident")
    assert w.start < w.end <= T0 and w.explanation_url == "https://status.example/incident"
