"""Pure builders of the local CA: its own certificate or CSR, leaves and CRLs.

Nothing here does I/O or knows where the key lives; callers pass a private-key
object (a software key or a token-backed one) and call these inside the key
backend's :meth:`run`. A leaf is written as DER here (:func:`leaf_tbs`, with
:mod:`connectors.localca.leafder`) and signed by its template's signer.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID, NameOID

from connectors.base import IssueRequest
from connectors.der import csr_subject, spki_key_bits
from connectors.localca import leafder
from connectors.localca.keys import SignHash
from connectors.localca.store import RevokedEntry

CRL_REASONS = {
    1: x509.ReasonFlags.key_compromise,
    2: x509.ReasonFlags.ca_compromise,
    3: x509.ReasonFlags.affiliation_changed,
    4: x509.ReasonFlags.superseded,
    5: x509.ReasonFlags.cessation_of_operation,
    6: x509.ReasonFlags.certificate_hold,
    8: x509.ReasonFlags.remove_from_crl,
    9: x509.ReasonFlags.privilege_withdrawn,
    10: x509.ReasonFlags.aa_compromise,
}


@dataclass(frozen=True)
class CAIdentity:
    """The issuing CA as leaves see it: certificate, chain and precomputed extensions."""

    cert: x509.Certificate
    cert_der: bytes
    chain_der: tuple[bytes, ...]
    aki: x509.AuthorityKeyIdentifier
    hash_alg: SignHash

    @classmethod
    def of(
        cls, cert: x509.Certificate, chain_der: tuple[bytes, ...], hash_alg: SignHash
    ) -> CAIdentity:
        """Derive the AKI once from the CA's SKI (or its key when the SKI is absent)."""
        try:
            ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        except x509.ExtensionNotFound:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(cert.public_key())  # type: ignore[arg-type]
        return cls(cert, cert.public_bytes(Encoding.DER), chain_der, aki, hash_alg)


def random_serial() -> int:
    """A positive 159-bit random serial (RFC 5280: at most 20 octets; CA/B: ≥ 64 random bits)."""
    while True:
        serial = secrets.randbits(159)
        if serial:
            return serial


def ca_name(common_name: str, organization: str) -> x509.Name:
    """The CA's subject."""
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _ca_extensions(
    public_key: CertificateIssuerPublicKeyTypes, path_length: int = 0
) -> list[tuple[x509.ExtensionType, bool]]:
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    return [
        (x509.BasicConstraints(ca=True, path_length=path_length), True),
        (usage, True),
        (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
    ]


def self_signed_ca(
    key: CertificateIssuerPrivateKeyTypes,
    public_key: CertificateIssuerPublicKeyTypes,
    subject: x509.Name,
    now: datetime,
    validity: timedelta,
    hash_alg: SignHash,
    path_length: int = 0,
) -> x509.Certificate:
    """A self-signed CA certificate: a single-tier CA (pathLen 0) or a root (pathLen 1)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), False)
    )
    for ext, critical in _ca_extensions(public_key, path_length):
        builder = builder.add_extension(ext, critical)
    return builder.sign(key, hash_alg)


def issuing_ca(
    root_key: CertificateIssuerPrivateKeyTypes,
    root: x509.Certificate,
    public_key: CertificateIssuerPublicKeyTypes,
    subject: x509.Name,
    now: datetime,
    validity: timedelta,
    hash_alg: SignHash,
    crl_url: str = "",
) -> x509.Certificate:
    """The online issuing CA's certificate, signed by the root; it may sign leaves only.

    ``crl_url`` (the root's CRL) becomes its CRL distribution point.
    """
    root_public = root.public_key()
    not_after = min(now + validity, root.not_valid_after_utc)  # never outlive the root
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root.subject)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_public), False)  # type: ignore[arg-type]
    )
    for ext, critical in _ca_extensions(public_key):
        builder = builder.add_extension(ext, critical)
    if crl_url:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), False)
    return builder.sign(root_key, hash_alg)


def is_self_signed(cert: x509.Certificate) -> bool:
    """True for a root (issuer is subject and the signature is its own)."""
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # InvalidSignature, or a key type that cannot verify
        return False
    return True


def ca_csr(
    key: CertificateIssuerPrivateKeyTypes,
    public_key: CertificateIssuerPublicKeyTypes,
    subject: x509.Name,
    hash_alg: SignHash,
) -> x509.CertificateSigningRequest:
    """A CSR asking an external root to certify this CA."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    for ext, critical in _ca_extensions(public_key):
        builder = builder.add_extension(ext, critical)
    return builder.sign(key, hash_alg)


def _encoded(value: x509.ExtensionType, critical: bool) -> bytes:
    """An extension that is the same in every leaf, its value encoded once by the library."""
    return leafder.extension(leafder.oid(value.oid.dotted_string), critical,
                             value.public_bytes())


_NOT_CA = _encoded(x509.BasicConstraints(ca=False, path_length=None), True)


def _leaf_usage(rsa_key: bool) -> bytes:
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=rsa_key,
        data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    return _encoded(usage, True)


_USAGE_EC, _USAGE_RSA = _leaf_usage(False), _leaf_usage(True)
_SKI = leafder.oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER.dotted_string)
_SAN = leafder.oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME.dotted_string)
_SPKI = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class LeafURLs:
    """Where relying parties fetch revocation data; empty when no public URL is known."""

    crl: str = ""
    ocsp: str = ""

    def extensions(self) -> list[bytes]:
        """CRL distribution point and AIA OCSP (DER), for those URLs that are set."""
        exts = []
        if self.crl:
            point = x509.DistributionPoint(
                [x509.UniformResourceIdentifier(self.crl)], None, None, None
            )
            exts.append(_encoded(x509.CRLDistributionPoints([point]), False))
        if self.ocsp:
            url = x509.UniformResourceIdentifier(self.ocsp)
            desc = x509.AccessDescription(AuthorityInformationAccessOID.OCSP, url)
            exts.append(_encoded(x509.AuthorityInformationAccess([desc]), False))
        return exts


@dataclass(frozen=True)
class LeafTemplate:
    """The parts of every leaf that do not change per request, encoded once per CA."""

    ca: CAIdentity
    issuer: bytes  # the CA's subject, DER
    signer: leafder.LeafSigner
    aki: bytes
    url_extensions: tuple[bytes, ...]

    @classmethod
    def of(cls, ca: CAIdentity, urls: LeafURLs) -> LeafTemplate:
        """The template for leaves of ``ca`` that point at ``urls``."""
        signer = leafder.LeafSigner(ca.cert.public_key(), ca.hash_alg)  # type: ignore[arg-type]
        return cls(ca, ca.cert.subject.public_bytes(), signer, _encoded(ca.aki, False),
                   tuple(urls.extensions()))


@dataclass(frozen=True)
class Leaf:
    """A leaf's TBS, and the fields of it the ledger records."""

    tbs: bytes
    serial: int
    not_after: datetime


@functools.cache
def _is_rsa(key_class: type) -> bool:
    """Whether keys of ``key_class`` are RSA keys (one metaclass check per class)."""
    return issubclass(key_class, rsa.RSAPublicKey)


@functools.lru_cache(maxsize=64)
def _eku(ekus: tuple[str, ...]) -> bytes:
    return _encoded(x509.ExtendedKeyUsage([x509.ObjectIdentifier(oid) for oid in ekus]), False)


def _key_identifier(public_key: CertificatePublicKeyTypes,
                    spki_der: bytes | None) -> x509.SubjectKeyIdentifier:
    """RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits.

    From ``spki_der`` (the key's SPKI as the library encodes it) when given: the
    bits are read there rather than from the key, whose encoding costs a point
    conversion. Otherwise (or for anything unexpected) the library derives it.
    """
    bits = spki_key_bits(spki_der) if spki_der is not None else None
    if bits is not None:
        return x509.SubjectKeyIdentifier(hashlib.sha1(bits).digest())
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


def _subject(request: IssueRequest, csr: x509.CertificateSigningRequest) -> bytes:
    """The leaf's subject (DER): a CN from the request, or the CSR's subject.

    A CSR the core parsed (and whose subject it read) gives its subject as it is
    encoded there, which is what the library writes back from the parsed names.
    """
    if request.subject_cn:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, request.subject_cn)]
                         ).public_bytes()
    found = csr_subject(request.csr_der) if csr is request.csr else None
    return found if found is not None else csr.subject.public_bytes()


def _a_label(name: str) -> bytes:
    try:
        return name.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"the DNS name {name!r} is not an A-label (ASCII) string") from None


def _sans(request: IssueRequest) -> bytes | None:
    """The subjectAltName value (DER) of the request's names, or None without names."""
    if not request.dns_names and not request.ip_addresses:
        return None
    return leafder.general_names(
        tuple(_a_label(n) for n in request.dns_names),
        tuple(ipaddress.ip_address(ip).packed for ip in request.ip_addresses))


def leaf_tbs(
    request: IssueRequest,
    csr: x509.CertificateSigningRequest,
    public_key: CertificatePublicKeyTypes,
    template: LeafTemplate,
    now: datetime,
    spki_der: bytes | None = None,
) -> Leaf:
    """Everything of the leaf except the signature; the serial is fresh and random.

    ``public_key`` is the CSR's key, loaded once by the caller; ``spki_der`` its
    SubjectPublicKeyInfo as the library encodes it, when the caller has it.
    Raises ValueError for what cannot go into a certificate.
    """
    now = now.replace(microsecond=0)  # a certificate's times are whole seconds
    not_after = now + request.profile.validity
    subject = _subject(request, csr)
    spki = spki_der if spki_der is not None else public_key.public_bytes(*_SPKI)
    ski = _key_identifier(public_key, spki).digest
    exts = [
        _NOT_CA,
        _USAGE_RSA if _is_rsa(type(public_key)) else _USAGE_EC,
        template.aki,
        leafder.extension(_SKI, False, leafder.tlv(0x04, ski)),
    ]
    if request.profile.ekus:
        exts.append(_eku(tuple(request.profile.ekus)))
    sans = _sans(request)
    if sans is not None:  # RFC 5280 §4.2.1.6: critical when the subject is empty
        exts.append(leafder.extension(_SAN, subject == leafder.EMPTY_NAME, sans))
    exts.extend(template.url_extensions)
    serial = random_serial()
    validity = leafder.sequence(leafder.time(now), leafder.time(not_after))
    tbs = leafder.sequence(
        leafder.VERSION_3, leafder.positive_integer(serial), template.signer.algorithm,
        template.issuer, validity, subject, spki, leafder.extensions(exts))
    return Leaf(tbs, serial, not_after)


def build_crl(
    key: CertificateIssuerPrivateKeyTypes,
    ca: CAIdentity,
    entries: Iterable[RevokedEntry],
    number: int,
    now: datetime,
    next_update: datetime,
) -> x509.CertificateRevocationList:
    """A complete CRL (RFC 5280 §5) with CRL number and AKI, signed by the CA key."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), False)
        .add_extension(ca.aki, False)
    )
    for entry in entries:
        revoked = (
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(entry.revoked_at)
        )
        if entry.reason in CRL_REASONS:
            revoked = revoked.add_extension(x509.CRLReason(CRL_REASONS[entry.reason]), False)
        builder = builder.add_revoked_certificate(revoked.build())
    return builder.sign(key, ca.hash_alg)


def load_chain_pem(data: bytes) -> Sequence[x509.Certificate]:
    """Every certificate of a PEM bundle, in file order."""
    return x509.load_pem_x509_certificates(data)
