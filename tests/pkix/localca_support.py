"""Helpers shared by the local CA tests: CSRs, requests, a file-backed CA, SoftHSM tokens."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from connectors.base import CAProfile, IssueRequest, IssueResult
from connectors.localca.connector import LocalCAConnector, LocalCASettings

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


async def issued_once(tmp: Path, request: IssueRequest) -> IssueResult:
    """What a freshly started CA under ``tmp`` answers to one request (closed after)."""
    ca = await started_ca(tmp)
    try:
        return await ca.issue(request)
    finally:
        await ca.aclose()


def ocsp_request_der(
    cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None = None
) -> bytes:
    """A DER OCSP request for ``cert`` (SHA-1 CertID, as openssl sends by default)."""
    from cryptography.x509 import ocsp

    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), False)
    return builder.build().public_bytes(serialization.Encoding.DER)


SOFTHSM_LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN_PIN = "4321"
# Every token any local CA test uses: SoftHSM reads its token list once, when the
# library is initialised, and python-pkcs11 initialises it once per process.
TOKENS = ("ec", "rsa", "sub", "faults", "e2e", "workers")


@dataclass(frozen=True)
class SoftHSM:
    """A private SoftHSM2 directory with one initialised token per name in TOKENS."""

    conf: Path
    pin_file: Path


_softhsm: SoftHSM | None = None


def softhsm() -> SoftHSM:
    """The process's SoftHSM tokens, made on first use; SOFTHSM2_CONF names them from then on."""
    global _softhsm
    if _softhsm is not None:
        return _softhsm
    root = Path(tempfile.mkdtemp(prefix="localca-softhsm-"))
    atexit.register(shutil.rmtree, root, True)
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    for label in TOKENS:
        cmd = ["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", "87654321"]
        subprocess.run([*cmd, "--pin", TOKEN_PIN], env=env, check=True, capture_output=True)
    pin_file = root / "pin"
    pin_file.write_text(TOKEN_PIN + "\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    _softhsm = SoftHSM(conf, pin_file)
    return _softhsm
