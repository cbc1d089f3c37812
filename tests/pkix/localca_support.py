"""Helpers shared by the local CA tests: CSRs, requests, a started file-backed CA."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from connectors.base import CAProfile, IssueRequest
from connectors.localca import LocalCAConnector, LocalCASettings

BASE_URL = "http://127.0.0.1:8080"


def csr_der(key_type: str = "ec", cn: str | None = None) -> bytes:
    """A CSR with a fresh key; the subject holds ``cn`` when given, else nothing."""
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if key_type == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(attrs))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.DER)


def issue_request(dns: tuple[str, ...] = ("www.example.org",), **kw: Any) -> IssueRequest:
    """An IssueRequest for a fresh EC CSR naming ``dns``."""
    profile = kw.pop("profile", CAProfile("default"))
    der = kw.pop("csr", None) or csr_der()
    return IssueRequest(request_id="req-1", csr_der=der, profile=profile, dns_names=dns, **kw)


def settings(tmp: Path, **options: Any) -> LocalCASettings:
    """Settings of a CA named "test" under ``tmp``, with a public URL unless overridden."""
    opts: Mapping[str, Any] = {"type": "local", "public_base_url": BASE_URL, **options}
    return LocalCASettings.from_options(opts, tmp, name="test")


async def started_ca(tmp: Path, **options: Any) -> LocalCAConnector:
    """A started file-backed CA; the caller closes it."""
    ca = LocalCAConnector("test", settings(tmp, **options))
    await ca.start()
    return ca


def ocsp_request_der(
    cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None = None
) -> bytes:
    """A DER OCSP request for ``cert`` (SHA-1 CertID, as openssl sends by default)."""
    from cryptography.x509 import ocsp

    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), False)
    return builder.build().public_bytes(serialization.Encoding.DER)
