"""The SCEP registration authority's key and certificate, made on first start.

SCEP clients encrypt their requests to the RA certificate and verify our
replies with it (RFC 8894 §2.1). The CA behind a connector may be AD CS or
EJBCA, whose key the gateway never holds, so the gateway answers as an RA with
its own RSA key: a file readable by the gateway user only (0600), and a
self-signed certificate (digitalSignature, keyEncipherment) that ``GetCACert``
serves next to the CA's certificates.

The certificate carries ``cA = true, pathLenConstraint = 0``: a client that
takes its trust from GetCACert (strongSwan pki, given the RA certificate with
``--cacert``) accepts a signature only from a certificate it can use as an
anchor, and strongSwan does not anchor a self-signed end-entity certificate.
The path length of 0 and the absence of an issued certificate keep it from
being anything more than the signer of SCEP replies.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

RA_KEY_BITS = 2048
RA_VALIDITY_DAYS = 3650
RA_SUBJECT = "acme-gateway SCEP RA"


@dataclass(frozen=True)
class RegistrationAuthority:
    """The RA's private key and its certificate (DER)."""

    key: rsa.RSAPrivateKey
    cert_der: bytes


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file that only its owner can read (never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _new_certificate(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, RA_SUBJECT)])
    now = datetime.now(UTC)
    usage = x509.KeyUsage(digital_signature=True, key_encipherment=True,
                          content_commitment=False, data_encipherment=False,
                          key_agreement=False, key_cert_sign=True, crl_sign=False,
                          encipher_only=False, decipher_only=False)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=RA_VALIDITY_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage, critical=True)
            .sign(key, hashes.SHA256()))


def load_or_create(key_file: Path, cert_file: Path) -> RegistrationAuthority:
    """The RA of these files, made (key 0600, certificate) when the key file is missing."""
    if not key_file.exists():
        new_key = rsa.generate_private_key(65537, RA_KEY_BITS)
        _write_private(key_file, new_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        cert_file.write_bytes(_new_certificate(new_key).public_bytes(serialization.Encoding.PEM))
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{key_file} is not an RSA key; SCEP clients encrypt to RSA only")
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return RegistrationAuthority(key, cert.public_bytes(serialization.Encoding.DER))
