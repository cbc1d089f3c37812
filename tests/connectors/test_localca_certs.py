"""Leaves of the local CA: pre-encoded constant extensions and the key identifier."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from connectors.base import CAProfile, Issued
from connectors.localca.certs import _key_identifier
from tests.pkix.localca_support import csr_der, issue_request, issued_once

SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _as_the_library_builds_it(leaf: x509.Certificate, key: ec.EllipticCurvePrivateKey
                              ) -> bytes:
    """The TBS bytes of ``leaf`` rebuilt by the library from its parsed contents."""
    builder = x509.CertificateBuilder(
        issuer_name=leaf.issuer, subject_name=leaf.subject, public_key=leaf.public_key(),
        serial_number=leaf.serial_number, not_valid_before=leaf.not_valid_before_utc,
        not_valid_after=leaf.not_valid_after_utc, extensions=list(leaf.extensions))
    return builder.sign(key, hashes.SHA256()).tbs_certificate_bytes


@pytest.mark.parametrize("key_type", ["ec", "rsa"])
@pytest.mark.parametrize("handed_over", [False, True])
async def test_a_leaf_is_what_the_library_encodes_from_its_contents(
        tmp_path: Path, key_type: str, handed_over: bool) -> None:
    """Pre-encoded extensions change no byte: rebuilding the leaf from its parsed
    extensions (library objects) gives the same TBS."""
    der = csr_der(key_type)
    profile = CAProfile("p", validity=timedelta(days=7),
                        ekus=(ExtendedKeyUsageOID.SERVER_AUTH.dotted_string,))
    request = issue_request(csr=der, profile=profile, ip_addresses=("192.0.2.7",))
    if handed_over:  # as the core sends it: the parsed CSR, its key and the key's SPKI
        csr = x509.load_der_x509_csr(der)
        request = replace(request, csr=csr, csr_key=csr.public_key(),
                          csr_spki=csr.public_key().public_bytes(*SPKI))
    result = await issued_once(tmp_path, request)
    assert isinstance(result, Issued)
    leaf = x509.load_der_x509_certificate(result.leaf_der)
    assert leaf.tbs_certificate_bytes == _as_the_library_builds_it(
        leaf, ec.generate_private_key(ec.SECP256R1()))
    ski = leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(leaf.public_key())  # type: ignore[arg-type]


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()], ids=lambda c: c.name)
def test_the_key_identifier_from_the_spki_is_the_librarys(curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve).public_key()
    want = x509.SubjectKeyIdentifier.from_public_key(key)
    assert _key_identifier(key, key.public_bytes(*SPKI)) == want
    assert _key_identifier(key, None) == want
    # Bytes that are not an SPKI fall back to the library's derivation.
    assert _key_identifier(key, b"\x30\x03\x02\x01\x00") == want
    assert _key_identifier(key, b"\x30") == want
