"""Fresh certificate keys and PKCS#10 requests, as a client makes them for each enrollment."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

CertKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
KEY_TYPES = ("ec", "rsa")


def new_key(key_type: str = "ec") -> CertKey:
    """A fresh key: ``ec`` is P-256 (cheap), ``rsa`` is RSA-2048 (slow: ~50 ms of client CPU)."""
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unknown key type {key_type!r}; use one of {KEY_TYPES}")


def make_csr(key: CertKey, names: list[str], common_name: str | None = None) -> bytes:
    """A DER CSR with ``names`` as dNSName SANs and an optional CN (certbot sends none)."""
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if names:
        sans = x509.SubjectAlternativeName([x509.DNSName(n) for n in names])
        builder = builder.add_extension(sans, critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)
