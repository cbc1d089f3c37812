"""Leaves the local CA writes as DER are what the library's builder makes of their contents."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto.core import ObjectIdentifier, OctetString
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from connectors.base import CAProfile, Issued, IssueRequest, Rejected
from connectors.localca import leafder
from connectors.localca.connector import LocalCAConnector
from tests.pkix.localca_support import issue_request, settings

SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _csr(subject: x509.Name, key_type: str = "ec") -> bytes:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        rsa.generate_private_key(65537, 2048) if key_type == "rsa"
        else ec.generate_private_key(ec.SECP384R1() if key_type == "p384" else ec.SECP256R1()))
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


def _handed_over(request: IssueRequest) -> IssueRequest:
    """The request as the core sends it: the parsed CSR (subject read), its key and SPKI."""
    csr = x509.load_der_x509_csr(request.csr_der)
    assert csr.subject is not None
    key = csr.public_key()
    return replace(request, csr=csr, csr_key=key, csr_spki=key.public_bytes(*SPKI),
                   first_submission=True)


def _rebuilt(leaf: x509.Certificate, issuer: x509.Certificate,
             key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
             hash_alg: hashes.HashAlgorithm) -> bytes:
    """The TBS the library's builder makes of ``leaf``'s parsed contents."""
    builder = x509.CertificateBuilder(
        issuer_name=issuer.subject, subject_name=leaf.subject, public_key=leaf.public_key(),
        serial_number=leaf.serial_number, not_valid_before=leaf.not_valid_before_utc,
        not_valid_after=leaf.not_valid_after_utc, extensions=list(leaf.extensions))
    return builder.sign(key, hash_alg).tbs_certificate_bytes  # type: ignore[arg-type]


_SUBJECTS = {
    "empty": x509.Name([]),
    "cn": x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example.org")]),
    "several": x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ex Ample GmbH"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Ünits"),
        x509.NameAttribute(NameOID.COMMON_NAME, "a.example.org")]),
    "multi-valued": x509.Name([x509.RelativeDistinguishedName([
        x509.NameAttribute(NameOID.COMMON_NAME, "a.example.org"),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, "42")])]),
}


async def _issued(ca: LocalCAConnector, request: IssueRequest) -> tuple[
        x509.Certificate, x509.Certificate, object, hashes.HashAlgorithm | None]:
    """Issue ``request`` (the CA started), close the CA; the leaf, its issuer, the CA's
    signing key and the CA's hash."""
    try:
        result = await ca.issue(request)
        key = ca.backend.signing_key()
        hash_alg = ca._identity().hash_alg
    finally:
        await ca.aclose()
    assert isinstance(result, Issued)
    return (x509.load_der_x509_certificate(result.leaf_der),
            x509.load_der_x509_certificate(result.chain_der[0]), key, hash_alg)


@pytest.mark.parametrize("ca_key", ["ec-p256", "ec-p384", "rsa-2048"])
@pytest.mark.parametrize("subject", sorted(_SUBJECTS))
@pytest.mark.parametrize("handed_over", [False, True])
async def test_a_leaf_is_what_the_builder_makes(tmp_path: Path, ca_key: str, subject: str,
                                                handed_over: bool) -> None:
    ca = LocalCAConnector("test", settings(tmp_path, key_type=ca_key))
    await ca.start()
    profile = CAProfile("p", validity=timedelta(days=7),
                        ekus=(ExtendedKeyUsageOID.SERVER_AUTH.dotted_string,))
    request = issue_request(csr=_csr(_SUBJECTS[subject], "rsa" if ca_key == "rsa-2048" else "ec"),
                            dns=("a.example.org", "b.example.org"),
                            ip_addresses=("192.0.2.7", "2001:db8::1"), profile=profile)
    leaf, issuer, key, hash_alg = await _issued(
        ca, _handed_over(request) if handed_over else request)
    leaf.verify_directly_issued_by(issuer)
    assert leaf.tbs_certificate_bytes == _rebuilt(leaf, issuer, key, hash_alg)  # type: ignore[arg-type]
    assert leaf.subject == _SUBJECTS[subject]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical is (subject == "empty")


@pytest.mark.parametrize("key_type", ["p384", "rsa"])
async def test_the_subject_cn_of_the_request_and_other_csr_keys(tmp_path: Path,
                                                                key_type: str) -> None:
    ca = LocalCAConnector("test", settings(tmp_path, public_base_url=""))
    await ca.start()
    request = issue_request(csr=_csr(_SUBJECTS["several"], key_type), subject_cn="forced.example")
    leaf, issuer, key, _ = await _issued(ca, _handed_over(request))
    assert leaf.subject == x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forced.example")])
    assert leaf.tbs_certificate_bytes == _rebuilt(leaf, issuer, key, hashes.SHA256())  # type: ignore[arg-type]


async def test_validity_past_2049_is_generalized_time(tmp_path: Path) -> None:
    """RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050 on."""
    clock = [datetime(2026, 1, 1, tzinfo=UTC)]
    ca = LocalCAConnector("test", settings(tmp_path), clock=lambda: clock[0])
    await ca.start()
    clock[0] = datetime(2049, 12, 31, 12, 0, 0, 654321, tzinfo=UTC)
    request = issue_request(profile=CAProfile("p", timedelta(days=2)))
    leaf, issuer, key, _ = await _issued(ca, request)
    not_before = datetime(2049, 12, 31, 12, 0, 0, tzinfo=UTC) - settings(tmp_path).backdate
    assert leaf.not_valid_before_utc == not_before  # whole seconds
    assert leaf.not_valid_after_utc == not_before + timedelta(days=2)
    assert leaf.tbs_certificate_bytes == _rebuilt(leaf, issuer, key, hashes.SHA256())  # type: ignore[arg-type]


async def test_a_name_that_is_not_an_a_label_is_rejected(tmp_path: Path) -> None:
    ca = LocalCAConnector("test", settings(tmp_path))
    await ca.start()
    try:
        result = await ca.issue(issue_request(dns=("bücher.example",)))
    finally:
        await ca.aclose()
    assert isinstance(result, Rejected)
    assert "A-label" in result.reason


@pytest.mark.parametrize("value", [0, 1, 127, 128, 255, 256, 2**159 - 1, 2**159, 2**160])
def test_integers_are_minimal_and_positive(value: int) -> None:
    der = leafder.positive_integer(value)
    body = der[2:]
    assert der[0] == 0x02 and der[1] == len(body)
    assert int.from_bytes(body, "big", signed=True) == value
    assert len(body) == 1 or not (body[0] == 0 and body[1] < 0x80)  # no needless zero octet


@pytest.mark.parametrize("size", [0, 1, 127, 128, 255, 256, 65535, 65536])
def test_lengths(size: int) -> None:
    der = leafder.tlv(0x04, bytes(size))
    assert OctetString.load(der).native == bytes(size)


@pytest.mark.parametrize("dotted", ["2.5.29.17", "1.2.840.10045.4.3.2", "1.3.6.1.4.1.311.21.7",
                                    "2.999.1", "1.2.840.113549.1.1.11"])
def test_object_identifiers(dotted: str) -> None:
    assert leafder.oid(dotted) == ObjectIdentifier(dotted).dump()
