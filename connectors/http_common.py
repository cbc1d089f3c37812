"""What the HTTP connectors (certsrv, EJBCA REST) share: TLS, timeouts, retries, error mapping.

* :class:`TlsSettings` – the server trust anchors and an optional client
  certificate, from PEM files or a PKCS#12 bundle, read from the connector's
  option table (key passphrases only through ``*_file`` / ``*_env``).
* :class:`HttpPolicy` – timeouts and how often an idempotent read is retried.
* :func:`translate` – turns aiohttp / ssl / timeout exceptions into the
  connector error tree at the edge, with a message naming cause and fix.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from connectors.base import CAConfigError, CAUnavailable, ConnectorError
from connectors.secrets import OptionReader

T = TypeVar("T")


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts and retries of one connector."""

    timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 10.0
    retries: int = 2
    retry_backoff_seconds: float = 1.0

    @classmethod
    def from_reader(cls, r: OptionReader) -> HttpPolicy:
        """Read the timeout and retry options (``timeout_seconds``, ``retries``, ...)."""
        return cls(
            timeout_seconds=r.number("timeout_seconds", 30.0, 0.1),
            connect_timeout_seconds=r.number("connect_timeout_seconds", 10.0, 0.1),
            retries=r.integer("retries", 2, 0, 10),
            retry_backoff_seconds=r.number("retry_backoff_seconds", 1.0),
        )

    def client_timeout(self) -> aiohttp.ClientTimeout:
        """The aiohttp timeout of one request."""
        return aiohttp.ClientTimeout(
            total=self.timeout_seconds, connect=self.connect_timeout_seconds
        )


@dataclass(frozen=True, repr=False)
class TlsSettings:
    """Server trust and the optional client certificate; ``repr`` hides the passphrase."""

    ca_bundle_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    client_key_passphrase: str | None = None
    pkcs12_file: Path | None = None
    pkcs12_passphrase: str | None = None

    def __repr__(self) -> str:
        return (
            f"TlsSettings(ca_bundle_file={self.ca_bundle_file}, client_cert_file="
            f"{self.client_cert_file or self.pkcs12_file}, client_key=<hidden>)"
        )

    @classmethod
    def from_reader(cls, r: OptionReader) -> TlsSettings:
        """Read ``ca_bundle_file``, ``client_cert_file``/``client_key_file`` or ``pkcs12_file``."""
        settings = cls(
            ca_bundle_file=r.path("ca_bundle_file"),
            client_cert_file=r.path("client_cert_file"),
            client_key_file=r.path("client_key_file"),
            client_key_passphrase=r.secret("client_key_passphrase"),
            pkcs12_file=r.path("pkcs12_file"),
            pkcs12_passphrase=r.secret("pkcs12_passphrase"),
        )
        if settings.pkcs12_file and settings.client_cert_file:
            raise r.error("pkcs12_file", "give either pkcs12_file or client_cert_file, not both")
        if bool(settings.client_cert_file) != bool(settings.client_key_file):
            raise r.error("client_cert_file", "client_cert_file and client_key_file go together")
        return settings

    @property
    def has_client_cert(self) -> bool:
        """True when a client certificate is configured."""
        return bool(self.client_cert_file or self.pkcs12_file)

    def ssl_context(self, source: str) -> ssl.SSLContext:
        """A verifying client context, with the client certificate loaded if there is one."""
        ctx = ssl.create_default_context(
            cafile=str(self.ca_bundle_file) if self.ca_bundle_file else None
        )
        if self.pkcs12_file:
            _load_pkcs12(ctx, self.pkcs12_file, self.pkcs12_passphrase, source)
        elif self.client_cert_file and self.client_key_file:
            _check_not_expired(
                _read_cert(self.client_cert_file, source), self.client_cert_file, source
            )
            try:
                ctx.load_cert_chain(
                    self.client_cert_file, self.client_key_file, self.client_key_passphrase
                )
            except (ssl.SSLError, OSError) as exc:
                raise CAConfigError(
                    f"{source}: cannot load client_cert_file/client_key_file ({exc}); check "
                    "that the key matches the certificate and the passphrase is right"
                ) from exc
        return ctx


def _read_cert(path: Path, source: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())[0]
    except (ValueError, OSError) as exc:
        raise CAConfigError(f"{source}: {path} holds no PEM certificate ({exc})") from exc


def _check_not_expired(cert: x509.Certificate, path: Path, source: str) -> None:
    # The CA would refuse the TLS handshake with a terse alert; say it plainly first.
    now = datetime.now(UTC)
    if cert.not_valid_after_utc < now:
        raise CAConfigError(
            f"{source}: the client certificate in {path} expired on "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; renew it and replace the file"
        )
    if cert.not_valid_before_utc > now:
        raise CAConfigError(
            f"{source}: the client certificate in {path} is not valid before "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC; check the clock"
        )


def _load_pkcs12(ctx: ssl.SSLContext, path: Path, passphrase: str | None, source: str) -> None:
    """Load a PKCS#12 bundle; the key passes through a file only in encrypted form."""
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(
            path.read_bytes(), passphrase.encode() if passphrase is not None else None
        )
    except (ValueError, OSError) as exc:
        raise CAConfigError(
            f"{source}: cannot open pkcs12_file {path} ({exc}); check pkcs12_passphrase_file/_env"
        ) from exc
    if key is None or cert is None:
        raise CAConfigError(f"{source}: pkcs12_file {path} lacks a private key or a certificate")
    _check_not_expired(cert, path, source)
    # ssl can only load keys from files: write it encrypted under a one-time password.
    one_time = os.urandom(24).hex()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_time.encode()),
    )
    chain = [cert, *extra]
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
        key_path.write_bytes(pem)
        ctx.load_cert_chain(cert_path, key_path, one_time)


def translate(exc: BaseException, what: str, fix: str = "") -> ConnectorError:
    """Map a transport exception during ``what`` to the connector error tree."""
    hint = f"; {fix}" if fix else ""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return CAConfigError(
            f"{what}: the CA's TLS certificate is not trusted ({exc.certificate_error}); "
            "set ca_bundle_file to the CA's issuing chain"
        )
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        text = str(exc)
        if "expired" in text or "unknown ca" in text or "bad certificate" in text:
            return CAConfigError(
                f"{what}: the CA refused our TLS client certificate ({text}); "
                "renew or re-register the client certificate"
            )
        return CAUnavailable(f"{what}: TLS handshake failed ({text}){hint}")
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return CAUnavailable(f"{what}: no answer within the timeout; the CA is slow or down{hint}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return CAUnavailable(
            f"{what}: cannot connect to {exc.host}:{exc.port} ({exc.os_error}); "
            "check that the CA is up and the url is right"
        )
    if isinstance(exc, aiohttp.ClientError | OSError):
        return CAUnavailable(f"{what}: connection failed ({type(exc).__name__}: {exc}){hint}")
    raise exc


async def with_retries(policy: HttpPolicy, what: str, call: Callable[[], Awaitable[T]]) -> T:
    """Run an idempotent call, retrying transient failures ``policy.retries`` times."""
    attempt = 0
    while True:
        try:
            return await call()
        except (TimeoutError, aiohttp.ClientError, OSError, ConnectorError) as exc:
            error = translate(exc, what)
            if not error.retryable or attempt >= policy.retries:
                raise error from exc
        attempt += 1
        await asyncio.sleep(policy.retry_backoff_seconds * attempt)


def order_chain(leaf_der: bytes | None, certs_der: list[bytes]) -> tuple[bytes, ...]:
    """The CA certificates of ``certs_der`` upwards: the leaf's issuer first, root last.

    With no leaf, start from the certificate that issued none of the others
    (the issuing CA). The leaf itself is left out.
    """
    certs = {der: x509.load_der_x509_certificate(der) for der in certs_der if der != leaf_der}
    by_subject = {c.subject: der for der, c in certs.items()}
    ordered: list[bytes] = []
    if leaf_der is not None:
        current = x509.load_der_x509_certificate(leaf_der)
    else:
        issuers = {c.issuer for c in certs.values() if c.issuer != c.subject}
        bottom = [der for der, c in certs.items() if c.subject not in issuers]
        if not bottom:
            return tuple(certs)
        current = certs[bottom[0]]
        ordered.append(by_subject.pop(current.subject))
    while current.issuer != current.subject and current.issuer in by_subject:
        der = by_subject.pop(current.issuer)
        ordered.append(der)
        current = certs[der]
    return tuple(ordered)
