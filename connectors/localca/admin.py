"""Operator actions on a local CA: create it, install an externally signed certificate, describe it.

These back ``acme-gateway ca init | import-cert | info``. They work on the CA
directory and the key backend directly, without starting the connector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from connectors.base import CAConfigError
from connectors.localca.certs import ca_csr, ca_name, load_chain_pem
from connectors.localca.connector import make_backend
from connectors.localca.keys import KeyBackend, hash_for
from connectors.localca.pgledger import make_ledger
from connectors.localca.root import chain_pem, new_ca_certificates
from connectors.localca.settings import LocalCASettings


@dataclass(frozen=True)
class InitResult:
    """What ``ca init`` made."""

    key_created: bool
    key_location: str
    written: Path
    csr: bool


async def _opened(settings: LocalCASettings, create: bool) -> KeyBackend:
    backend = make_backend(settings)
    await backend.open(create=create)
    return backend


async def init_ca(settings: LocalCASettings, name: str, *, csr: bool, force: bool) -> InitResult:
    """Create the CA key (or reuse it) and the CA's certificates (see ``hierarchy``), or a CSR."""
    cert_path = settings.dir / "ca.pem"
    if cert_path.exists() and not force:
        raise CAConfigError(
            f"CA {name!r} already has a certificate ({cert_path}); "
            "`acme-gateway ca info` shows it, --force replaces the certificate (the key is kept)"
        )
    settings.dir.mkdir(parents=True, exist_ok=True)
    backend = await _opened(settings, create=True)
    try:
        key, public = backend.signing_key(), backend.public_key()
        subject = ca_name(settings.common_name, settings.organization)
        hash_alg = hash_for(settings.key_type)
        if csr:
            request = await backend.run(lambda: ca_csr(key, public, subject, hash_alg))
            target = settings.dir / "ca.csr.pem"
            target.write_bytes(request.public_bytes(Encoding.PEM))
        else:
            certs = await new_ca_certificates(settings, name, backend, datetime.now(UTC))
            target = cert_path
            target.write_bytes(chain_pem(certs))
        return InitResult(backend.created, backend.describe(), target, csr)
    finally:
        await backend.close()


def _check_ca_certificate(cert: x509.Certificate) -> None:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise CAConfigError(
            f"the certificate lacks {exc.oid._name}; a CA certificate needs it"
        ) from exc
    if not bc.ca or not usage.key_cert_sign:
        raise CAConfigError(
            "the certificate is not a CA certificate (basicConstraints CA / keyCertSign)"
        )


async def import_certificate(settings: LocalCASettings, pem: bytes, chain_pem: bytes = b"") -> Path:
    """Install the CA certificate an external root signed (plus its chain) after checking it."""
    try:
        certs = [*load_chain_pem(pem), *(load_chain_pem(chain_pem) if chain_pem else [])]
    except ValueError as exc:
        raise CAConfigError(f"cannot read the certificate: {exc}; give PEM files") from exc
    cert, chain = certs[0], certs[1:]
    _check_ca_certificate(cert)
    backend = await _opened(settings, create=False)
    try:
        if cert.public_key() != backend.public_key():
            raise CAConfigError(
                f"the certificate's key is not the CA key ({backend.describe()}); "
                "it was signed for another CSR"
            )
    finally:
        await backend.close()
    for child, parent in zip(certs, chain, strict=False):
        try:
            child.verify_directly_issued_by(parent)
        except Exception as exc:  # InvalidSignature or a name mismatch
            raise CAConfigError(
                f"the chain is out of order or incomplete: {child.subject.rfc4514_string()} "
                f"is not issued by {parent.subject.rfc4514_string()}"
            ) from exc
    target = settings.dir / "ca.pem"
    target.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in certs))
    return target


@dataclass
class CAInfo:
    """What ``ca info`` shows."""

    name: str
    key_location: str
    key_type: str
    key_status: str = "ok"
    chain: list[x509.Certificate] = field(default_factory=list)
    pending_csr: Path | None = None
    crl_url: str = ""
    ocsp_url: str = ""
    issued: int | None = None
    revoked: int | None = None


async def describe(settings: LocalCASettings, name: str) -> CAInfo:
    """The CA's chain, key location and state; a missing key is reported, not raised."""
    info = CAInfo(
        name,
        "",
        settings.key_type,
        crl_url=settings.crl_url(name),
        ocsp_url=settings.ocsp_url(name),
    )
    backend = make_backend(settings)
    info.key_location = backend.describe()
    cert_path = settings.dir / "ca.pem"
    if cert_path.exists():
        info.chain = list(load_chain_pem(cert_path.read_bytes()))
    csr_path = settings.dir / "ca.csr.pem"
    if csr_path.exists() and not info.chain:
        info.pending_csr = csr_path
    try:
        await backend.open(create=False)
        if info.chain and info.chain[0].public_key() != backend.public_key():
            info.key_status = "MISMATCH: the certificate does not belong to this key"
        await backend.close()
    except CAConfigError as exc:
        info.key_status = f"unavailable: {exc}"
    if settings.ledger_url or (settings.dir / "ca.db").exists():
        ledger = make_ledger(name, settings)
        await ledger.open()
        try:
            info.issued, info.revoked = await ledger.counts()
        finally:
            await ledger.close()
    return info


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint, colon-separated hex."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()
