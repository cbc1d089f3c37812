"""Finding the SubjectPublicKeyInfo in DER certificates and CSRs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from connectors.der import (
    certificate_spki,
    csr_request_info,
    csr_spki,
    csr_subject,
    is_canonical_ec_spki,
    spki_key_bits,
)
from gateway.core import csr as csrs

DER, SPKI = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
KEYS = {
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "rsa": lambda: rsa.generate_private_key(65537, 2048),
}


def _cert(key: CertificateIssuerPrivateKeyTypes, long_names: bool) -> x509.Certificate:
    # Long names push lengths past 127 bytes (multi-octet DER lengths).
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "n" * (60 if long_names else 3))]
                     * (4 if long_names else 1))
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(12345)
            .not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))


@pytest.mark.parametrize("long_names", [False, True])
@pytest.mark.parametrize("kind", sorted(KEYS))
def test_spki_is_found_where_the_library_put_it(kind: str, long_names: bool) -> None:
    key = KEYS[kind]()
    want = key.public_key().public_bytes(DER, SPKI)
    cert = _cert(key, long_names)
    assert certificate_spki(cert.public_bytes(DER)) == want
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "c" * (60 if long_names else 3))]
                     * (4 if long_names else 1))
    req = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    assert csr_spki(req.public_bytes(DER)) == want


@pytest.mark.parametrize("der", [b"", b"\x30", b"\x30\x05\x30\x03\x02\x01", b"\x04\x00",
                                 b"\x30\x84\xff\xff\xff\xff", b"\x30\x80\x00\x00"])
def test_garbage_gives_none(der: bytes) -> None:
    assert certificate_spki(der) is None
    assert csr_spki(der) is None
    assert csr_subject(der) is None
    assert csr_request_info(der) is None


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_a_cut_short_certificate_or_request_gives_none(kind: str) -> None:
    """Every prefix that ends before the element sought gives None, never a short slice."""
    key = KEYS[kind]()
    cert = _cert(key, True).public_bytes(DER)
    spki = key.public_key().public_bytes(DER, SPKI)
    end = cert.index(spki) + len(spki)
    assert all(certificate_spki(cert[:cut]) is None for cut in range(end))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "c" * 60)] * 4)
    req = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    csr = req.public_bytes(DER)
    assert csr_subject(csr) == name.public_bytes()
    assert csr_request_info(csr) == req.tbs_certrequest_bytes
    assert all(csr_spki(csr[:cut]) is None for cut in range(csr.index(spki) + len(spki)))
    assert all(csr_request_info(csr[:cut]) is None for cut in range(len(csr)))


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()], ids=lambda c: c.name)
def test_the_library_encoding_of_an_ec_key_is_canonical(curve: ec.EllipticCurve) -> None:
    spki = ec.generate_private_key(curve).public_key().public_bytes(DER, SPKI)
    assert is_canonical_ec_spki(spki, curve.name)
    assert not is_canonical_ec_spki(spki, "secp521r1")
    assert not is_canonical_ec_spki(spki[:-1], curve.name)


def test_a_compressed_point_in_a_csr_is_encoded_afresh() -> None:
    """The SPKI is taken from the CSR only when it is the library's own encoding."""
    key = ec.generate_private_key(ec.SECP256R1())
    canonical = key.public_key().public_bytes(DER, SPKI)
    compressed = key.public_key().public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.CompressedPoint)
    # The same key with its point compressed: the curve's prefix, then a shorter BIT STRING.
    spki = bytes.fromhex("3039301306072a8648ce3d020106082a8648ce3d030107032200") + compressed
    assert serialization.load_der_public_key(spki).public_bytes(DER, SPKI) == canonical
    assert not is_canonical_ec_spki(spki, "secp256r1")


def test_parse_csr_records_the_library_encoding() -> None:
    for make in KEYS.values():
        key = make()
        req = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
               .sign(key, hashes.SHA256()))
        parsed = csrs.parse_csr(req.public_bytes(DER))
        assert parsed.spki_der == key.public_key().public_bytes(DER, SPKI)


def test_a_leaf_is_matched_to_the_csr_by_spki_bytes_or_else_by_key() -> None:
    """The issued leaf's key check: equal SPKI bytes suffice; other bytes fall back to
    comparing keys, so the same key encoded differently still matches and another key never."""
    from dataclasses import replace

    from gateway.core.issuance import _certifies

    key = ec.generate_private_key(ec.SECP256R1())
    req = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
           .sign(key, hashes.SHA256()))
    parsed = csrs.parse_csr(req.public_bytes(DER))
    leaf = _cert(key, False)
    leaf_der = leaf.public_bytes(DER)
    assert _certifies(leaf, leaf_der, parsed.der, parsed) == (True, parsed.spki_sha256)
    reencoded = replace(parsed, spki_der=b"\x30\x00")  # as if the CA encoded the key otherwise
    assert _certifies(leaf, leaf_der, parsed.der, reencoded) == (True, parsed.spki_sha256)
    assert _certifies(leaf, leaf_der, parsed.der, None) == (True, parsed.spki_sha256)
    other = _cert(ec.generate_private_key(ec.SECP256R1()), False)
    assert not _certifies(other, other.public_bytes(DER), parsed.der, parsed)[0]


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_the_key_bits_of_an_spki(kind: str) -> None:
    key = KEYS[kind]().public_key()
    spki = key.public_bytes(DER, SPKI)
    bits = spki_key_bits(spki)
    assert bits is not None and spki.endswith(bits)
    if kind.startswith("ec"):  # the uncompressed point
        assert bits == key.public_bytes(DER, serialization.PublicFormat.UncompressedPoint)
    assert spki_key_bits(spki + b"\x00") is None
    assert spki_key_bits(spki[:-1]) is None
    assert spki_key_bits(b"\x30\x03\x02\x01\x00") is None
