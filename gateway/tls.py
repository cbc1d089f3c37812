"""The gateway's HTTPS server certificate and TLS context.

With no certificate configured, a self-signed one is made on first start in
the data directory (EC P-256, names: localhost, the listen address, 127.0.0.1,
::1) and reused afterwards; clients are told to trust that file.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.config import ServerSettings
from gateway.errors import StartError


def server_cert_paths(server: ServerSettings) -> tuple[Path, Path]:
    """Certificate and key paths: configured ones, or the generated pair in the data dir."""
    if server.tls_cert_file and server.tls_key_file:
        return server.tls_cert_file, server.tls_key_file
    return server.data_dir / "tls" / "server.pem", server.data_dir / "tls" / "server.key"


def ensure_self_signed(server: ServerSettings) -> Path:
    """Create the self-signed server certificate if it does not exist; return its path."""
    cert_path, key_path = server_cert_paths(server)
    if cert_path.exists() and key_path.exists():
        return cert_path
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for addr in {"127.0.0.1", "::1", server.listen}:
        names.append(x509.IPAddress(ipaddress.ip_address(addr)))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme-gateway self-signed")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path


def server_context(server: ServerSettings, client_ca_files: tuple[Path, ...] = (),
                   client_ca_data: str = "") -> ssl.SSLContext:
    """TLS 1.2 and 1.3; client certificates requested (optional) when trust anchors are given.

    ``client_ca_data`` is PEM text (e.g. from :func:`gateway.est.trust.client_ca_pem`).
    """
    cert_path, key_path = server_cert_paths(server)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_path, key_path)
    if client_ca_files or client_ca_data:
        for path in client_ca_files:
            ctx.load_verify_locations(cafile=str(path))
        if client_ca_data:
            ctx.load_verify_locations(cadata=client_ca_data)
        # An intermediate (e.g. a manufacturer's issuing CA) may be the anchor itself.
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def https_context(server: ServerSettings, client_ca_data: str = "") -> ssl.SSLContext:
    """:func:`server_context`, or a StartError naming both files when they do not load."""
    try:
        return server_context(server, client_ca_data=client_ca_data)
    except (OSError, ssl.SSLError) as exc:
        cert_path, key_path = server_cert_paths(server)
        raise StartError(f"[server] tls_cert_file {cert_path} / tls_key_file {key_path}: "
                         f"cannot load the HTTPS certificate and key: {exc}") from None
