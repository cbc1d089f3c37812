"""An alternate chain for the local CA: its certificate cross-signed by an older root."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from gateway import config
from gateway.app import build_connectors, start_connector

OLD_ROOT_CN = "Example Legacy Root X1"


async def create_local_ca(data: dict[str, object]) -> Path:
    """Create the local CA of a settings document (as the first start does); its ca.pem."""
    settings = config.parse(data, "chains-test")
    connector = build_connectors(settings)["local"]
    await start_connector("local", connector)
    await connector.aclose()
    return settings.server.data_dir / "ca" / "local" / "ca.pem"


def cross_signed_chain(ca_pem: Path, out: Path) -> Path:
    """Write [the CA's certificate as signed by an old root, that old root] to ``out``."""
    ca = x509.load_pem_x509_certificates(ca_pem.read_bytes())[0]
    old_key = ec.generate_private_key(ec.SECP256R1())
    old_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, OLD_ROOT_CN)])
    now = datetime.now(UTC)
    ca_ext = x509.BasicConstraints(ca=True, path_length=None)
    old_root = (x509.CertificateBuilder().subject_name(old_name).issuer_name(old_name)
                .public_key(old_key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=3650))
                .add_extension(ca_ext, True).sign(old_key, hashes.SHA256()))
    cross = (x509.CertificateBuilder().subject_name(ca.subject).issuer_name(old_name)
             .public_key(ca.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - timedelta(days=1))
             .not_valid_after(now + timedelta(days=3650))
             .add_extension(ca_ext, True).sign(old_key, hashes.SHA256()))
    out.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in (cross, old_root)))
    return out
