"""A small two-level CA for the simulators and tests: root → issuing CA → leaves.

It signs what the simulated CAs issue, their TLS server certificates and the
TLS client certificates tests present. Keys are EC P-256 (fast to make).
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn: str, org: str = "Simulated PKI") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes | None = None) -> bytes:
    """PEM PKCS#8 of ``key``, encrypted when a passphrase is given."""
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def make_csr(names: list[str], cn: str | None = None) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    """A DER CSR for DNS ``names`` (subject CN only if ``cn``) and its key."""
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if names:
        sans = [x509.DNSName(n) for n in names]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER), key


@dataclass
class Leaf:
    """A certificate and its key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


class MiniCA:
    """Root and issuing CA; issues leaves from CSRs and TLS certificates."""

    def __init__(self, name: str = "Simulated") -> None:
        now = datetime.now(UTC)
        self.root_key = _key()
        self.root = self._build(
            _name(f"{name} Root CA"),
            _name(f"{name} Root CA"),
            self.root_key.public_key(),
            self.root_key,
            now,
            3650,
            ca=True,
        )
        self.key = _key()
        self.cert = self._build(
            _name(f"{name} Issuing CA"),
            self.root.subject,
            self.key.public_key(),
            self.root_key,
            now,
            1825,
            ca=True,
        )
        self.issued: dict[int, x509.Certificate] = {}

    @staticmethod
    def _build(
        subject: x509.Name,
        issuer: x509.Name,
        public_key: ec.EllipticCurvePublicKey,
        signer: ec.EllipticCurvePrivateKey,
        start: datetime,
        days: int,
        ca: bool = False,
        extensions: list[x509.ExtensionType] | None = None,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - timedelta(minutes=5))
            .not_valid_after(start + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        for ext in extensions or []:
            builder = builder.add_extension(ext, critical=False)
        return builder.sign(signer, hashes.SHA256())

    @property
    def chain_der(self) -> tuple[bytes, bytes]:
        """Issuing CA then root, DER."""
        return self.cert.public_bytes(Encoding.DER), self.root.public_bytes(Encoding.DER)

    def issue(
        self, csr_der: bytes, days: int = 90, subject: x509.Name | None = None
    ) -> x509.Certificate:
        """Sign a leaf for a CSR, keeping its subject (or ``subject``) and SANs."""
        csr = x509.load_der_x509_csr(csr_der)
        if not csr.is_signature_valid:
            raise ValueError("CSR signature is invalid")
        exts: list[x509.ExtensionType] = [
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            )
        ]
        try:
            exts.append(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
        except x509.ExtensionNotFound:
            pass
        public_key = csr.public_key()
        cert = self._build(
            subject or csr.subject,
            self.cert.subject,
            public_key,  # type: ignore[arg-type]
            self.key,
            datetime.now(UTC),
            days,
            extensions=exts,
        )
        self.issued[cert.serial_number] = cert
        return cert

    def leaf(
        self,
        cn: str,
        hosts: tuple[str, ...] = (),
        days: int = 30,
        start: datetime | None = None,
        client: bool = False,
    ) -> Leaf:
        """A TLS server (``hosts``) or client certificate with a fresh key."""
        key = _key()
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        eku = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        exts: list[x509.ExtensionType] = [x509.ExtendedKeyUsage([eku])]
        if sans:
            exts.append(x509.SubjectAlternativeName(sans))
        cert = self._build(
            _name(cn, "Simulated Clients" if client else "Simulated PKI"),
            self.cert.subject,
            key.public_key(),
            self.key,
            start or datetime.now(UTC),
            days,
            extensions=exts,
        )
        return Leaf(cert, key)

    def write_leaf(
        self, leaf: Leaf, directory: Path, stem: str, passphrase: bytes | None = None
    ) -> tuple[Path, Path]:
        """Write ``stem.pem`` (cert + issuing CA) and ``stem.key``; return their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
        cert_path.write_bytes(
            leaf.cert.public_bytes(Encoding.PEM) + self.cert.public_bytes(Encoding.PEM)
        )
        key_path.write_bytes(key_pem(leaf.key, passphrase))
        key_path.chmod(0o600)
        return cert_path, key_path

    def write_pkcs12(self, leaf: Leaf, path: Path, passphrase: bytes) -> Path:
        """Write the leaf, its key and the issuing CA as a PKCS#12 file."""
        enc = serialization.BestAvailableEncryption(passphrase)
        path.write_bytes(
            pkcs12.serialize_key_and_certificates(b"client", leaf.key, leaf.cert, [self.cert], enc)
        )
        return path

    def write_trust(self, path: Path) -> Path:
        """Write the root certificate (what a client must trust) as PEM."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.root.public_bytes(Encoding.PEM))
        return path

    def server_tls(
        self, directory: Path, require_client_cert: bool = False
    ) -> tuple[ssl.SSLContext, Leaf]:
        """A TLS server context for 127.0.0.1/localhost (optionally demanding a client
        certificate issued under this CA) and the server's certificate."""
        leaf = self.leaf("localhost", ("127.0.0.1", "localhost"))
        cert_path, key_path = self.write_leaf(leaf, directory, "server")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert_path, key_path)
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cadata=self.root.public_bytes(Encoding.PEM).decode())
        return ctx, leaf
