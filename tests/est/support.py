"""EST test support: keys, CSRs, a manufacturer CA, and the gateway on a loopback HTTPS port."""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from connectors.base import Connector
from gateway import config, keys, tls
from gateway.app import build_connectors, create_app
from gateway.core.service import Core
from gateway.est.passwords import hash_password
from gateway.est.trust import client_ca_pem
from gateway.model.clock import Clock
from gateway.validation import Validator
from tests.e2e.harness import free_port

PASSWORD = "correct horse battery staple"
# The Basic credentials of the test user every password label accepts.
ALICE = ("alice", PASSWORD)
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER
Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def ec_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key."""
    return ec.generate_private_key(ec.SECP256R1())


def make_csr(key: Key, cn: str | None = "router01.example.net", sans: tuple[str, ...] = (),
             challenge_password: str | None = None, org: str | None = "Example") -> bytes:
    """A DER CSR with the given subject CN (plus O) and DNS SANs."""
    attrs = []
    if cn:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), False)
    if challenge_password is not None:
        builder = builder.add_attribute(x509.oid.AttributeOID.CHALLENGE_PASSWORD,
                                        challenge_password.encode())
    return builder.sign(key, hashes.SHA256()).public_bytes(DER)


def b64(der: bytes) -> bytes:
    """Base64 with 64-column lines, as most clients send."""
    text = base64.b64encode(der)
    return b"\n".join(text[i:i + 64] for i in range(0, len(text), 64)) + b"\n"


@dataclass
class Manufacturer:
    """A device manufacturer's CA and one device certificate (IDevID) it issued."""

    dir: Path
    ca_key: ec.EllipticCurvePrivateKey = field(default_factory=ec_key)

    def __post_init__(self) -> None:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Manufacturer CA")])
        now = datetime.now(UTC)
        self.ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(hours=1))
                   .not_valid_after(now + timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                   .sign(self.ca_key, hashes.SHA256()))
        self.ca_file = self.dir / "manufacturer-ca.pem"
        self.ca_file.write_bytes(self.ca.public_bytes(PEM))

    def device(self, cn: str = "SN-0001", serial_number: str | None = None) -> tuple[Path, Path]:
        """A device certificate and key as PEM files (subject CN, and serialNumber if given)."""
        key = ec_key()
        now = datetime.now(UTC)
        subject = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if serial_number is not None:
            # PrintableString as devices use, UTF8String for what it cannot hold (e.g. "*").
            kind = None if re.fullmatch(r"[A-Za-z0-9 '()+,./:=?-]*", serial_number) \
                else _ASN1Type.UTF8String
            subject.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial_number, _type=kind))
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name(subject))
                .issuer_name(self.ca.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=7))
                .sign(self.ca_key, hashes.SHA256()))
        return write_pair(self.dir / f"{cn}-{serial_number}", cert.public_bytes(DER), key)


def write_pair(stem: Path, cert_der: bytes, key: Key) -> tuple[Path, Path]:
    """Write a certificate and its key as PEM files next to ``stem``."""
    cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
    cert_path.write_bytes(x509.load_der_x509_certificate(cert_der).public_bytes(PEM))
    key_path.write_bytes(key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def est_section(manufacturer_ca: Path, **overrides: Any) -> dict[str, Any]:
    """An [est] table with labels for every auth mode (password hashes cheap for tests)."""
    # alice may request the routers' names; bob is a user bound to no names at all.
    users = {"alice": {"password": hash_password(PASSWORD, 1000), "names": ["*.example.net"]},
             "bob": hash_password("bobs pw", 1000),
             "carol": {"password": hash_password(PASSWORD, 1000),
                       "names": ["*.branch.example.net"]}}
    labels: dict[str, Any] = {
        "default": {"profile": "routers", "auth": "either"},
        "certonly": {"profile": "routers", "auth": "cert",
                     "client_ca_files": [str(manufacturer_ca)], "names": ["*.example.net"]},
        # Devices may request only the name derived from their certificate's serial number.
        "devices": {"profile": "routers", "auth": "cert",
                    "client_ca_files": [str(manufacturer_ca)],
                    "cert_names": ["{serialNumber}.devices.example.net"]},
        # Certificates of the label's own CA may enroll here, for their own names.
        "issuing": {"profile": "routers", "auth": "cert", "trust_issuing_ca": True,
                    "cert_names": ["{cn}", "{dns}"]},
        "basic": {"profile": "routers", "auth": "basic", "users": ["alice"]},
        "both": {"profile": "routers", "auth": "both",
                 "client_ca_files": [str(manufacturer_ca)]},
        "open": {"profile": "routers", "auth": "none"},
        "pop": {"profile": "routers", "auth": "basic", "proof_of_possession": True},
        "oneline": {"profile": "routers", "auth": "basic", "base64_line_length": 0},
        "slow": {"profile": "slow", "auth": "basic"},
        "held": {"profile": "held", "auth": "basic"},
    }
    section = {"users": users, "labels": labels, "retry_after_seconds": 1,
               "enroll_wait_seconds": 2.0}
    section.update(overrides)
    return section


def settings_doc(tmp: Path, est: dict[str, Any],
                 profiles: Mapping[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A gateway config with a local CA and a "slow" CA slot filled by a fake in tests.

    ``profiles`` adds keys to (or adds) profiles by name.
    """
    doc = {
        "server": {"data_dir": str(tmp / "gw"), "listen": "127.0.0.1",
                   "https_port": free_port()},
        "cas": {"local": {"type": "local"}, "slow": {"type": "local"}},
        "profiles": {
            "default": {"ca": "local"},
            "routers": {"ca": "local", "allowed_patterns": ["*.example.net"],
                        "validity_days": 30},
            "slow": {"ca": "slow", "allowed_patterns": ["*.example.net"]},
            "held": {"ca": "local", "allowed_patterns": ["*.example.net"],
                     "approval_required": True},
        },
        "est": est,
    }
    for name, options in (profiles or {}).items():
        doc["profiles"].setdefault(name, {"ca": "local"}).update(options)  # type: ignore[index]
    return doc


@dataclass
class Gateway:
    """A running gateway: its base URL, server certificate file and core."""

    url: str
    server_cert: Path
    app: web.Application

    @property
    def core(self) -> Core:
        """The running core."""
        return self.app[keys.CORE]

    def client_context(self, cert: Path | None = None, key: Path | None = None,
                       tls12: bool = False) -> ssl.SSLContext:
        """A client TLS context trusting the gateway, optionally with a client certificate."""
        ctx = ssl.create_default_context(cafile=str(self.server_cert))
        if cert is not None and key is not None:
            ctx.load_cert_chain(str(cert), str(key))
        if tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        return ctx


@asynccontextmanager
async def running_gateway(tmp: Path, est: dict[str, Any], slow: Connector | None = None, *,
                          profiles: Mapping[str, dict[str, Any]] | None = None,
                          validator: Validator | None = None, clock: Clock | None = None
                          ) -> AsyncIterator[Gateway]:
    """The real app on a loopback HTTPS port, client certificates requested as in `serve`.

    ``slow`` replaces the CA of the "slow" profile (e.g. a fake that answers Pending);
    ``profiles`` changes profiles (see :func:`settings_doc`); ``validator`` and
    ``clock`` are given to the app (ACME orders, time-dependent checks).
    """
    settings = config.parse(settings_doc(tmp, est, profiles), "est-test")
    cert = tls.ensure_self_signed(settings.server)
    connectors = build_connectors(settings)
    if slow is not None:
        connectors["slow"] = slow
    app = create_app(settings, connectors=connectors, validator=validator, clock=clock)
    runner = web.AppRunner(app)
    await runner.setup()
    ctx = tls.server_context(settings.server, client_ca_data=await client_ca_pem(app))
    port = settings.server.https_port
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ctx).start()
    try:
        yield Gateway(f"https://127.0.0.1:{port}/.well-known/est", cert, app)
    finally:
        await runner.cleanup()


async def request(gw: Gateway, method: str, path: str, body: bytes | None = None,
                  auth: tuple[str, str] | None = None, cert: tuple[Path, Path] | None = None,
                  headers: dict[str, str] | None = None
                  ) -> tuple[int, Mapping[str, str], bytes]:
    """One request on a fresh connection: status, headers, body."""
    ctx = gw.client_context(*(cert or (None, None)))
    hdrs = {"Content-Type": "application/pkcs10", **(headers or {})}
    if auth:
        hdrs["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    async with aiohttp.ClientSession() as session, session.request(
            method, gw.url + path, data=body, ssl=ctx, headers=hdrs) as resp:
        return resp.status, resp.headers, await resp.read()


def certs_of(body: bytes) -> list[x509.Certificate]:
    """The certificates of a base64 certs-only PKCS#7 body."""
    from cryptography.hazmat.primitives.serialization import pkcs7

    return pkcs7.load_der_pkcs7_certificates(base64.b64decode(b"".join(body.split())))
