"""The local CA: issues, revokes and publishes CRL and OCSP with its own key.

The key lives in a file (development, the zero-setup default) or in a PKCS#11
token (production). Files of one CA, in ``settings.dir``::

    ca.pem        the CA certificate, then any chain above it (PEM)
    ca.key.pem    the CA key, mode 0600 (file backend only)
    ca.csr.pem    a CSR for an external root (``acme-gateway ca init --csr``)
    ca.db         the ledger: issued serials, revocations, CRL number (SQLite)
    crl.der       the newest CRL any process serving this directory signed
    ocsp.pem, ocsp.key.pem   the delegated OCSP responder (ocsp_responder = "delegated")

With a file key every signature is made inline on the event loop; with a token
key, in the token's own thread (see :mod:`connectors.localca.pkcs11_keys`).

Several worker processes (``serve --workers N``) may each run a connector on the
same directory. They share the key, the ledger (whose transactions order them, see
:mod:`connectors.localca.store`) and crl.der: whichever process signs a CRL
publishes it there, and the others pick it up on their next CRL request (see
:meth:`LocalCAConnector.crl_der`), so a revocation through one process is on the
CRL every process serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPublicKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.hazmat.primitives.serialization import Encoding

from connectors.base import (
    AlreadyRevoked,
    CAConfigError,
    CAUnavailable,
    ConnectorError,
    Issued,
    IssueRequest,
    IssueResult,
    Rejected,
    RevocationReason,
    starting,
)
from connectors.localca.certs import (
    CAIdentity,
    LeafTemplate,
    LeafURLs,
    build_crl,
    is_self_signed,
    leaf_tbs,
    load_chain_pem,
)
from connectors.localca.keys import FileKeyBackend, KeyBackend, hash_for, key_type_of
from connectors.localca.ocsp import OCSPResponder
from connectors.localca.pgledger import make_ledger
from connectors.localca.root import ROOT_CRL, chain_pem, new_ca_certificates
from connectors.localca.settings import LocalCASettings, Pkcs11Settings

__all__ = [
    "LocalCAConnector",
    "LocalCASettings",
    "Pkcs11Settings",
    "UnknownCertificate",
    "make_backend",
]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class UnknownCertificate(ConnectorError):
    """The certificate was not issued by this CA (or is not a certificate at all)."""


def utcnow() -> datetime:
    """The wall clock, timezone-aware."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class _CRL:
    """A signed CRL as this process holds it: bytes, CRL number and nextUpdate."""

    der: bytes
    number: int
    next_update: datetime


def _read_crl(path: Path, ca_key: CertificateIssuerPublicKeyTypes) -> _CRL | None:
    """The CRL in ``path`` if it is one of this CA's; None when missing or unusable."""
    try:
        der = path.read_bytes()
    except OSError:
        return None
    return _parse_crl(der, ca_key)


def _parse_crl(der: bytes | None, ca_key: CertificateIssuerPublicKeyTypes) -> _CRL | None:
    """``der`` if it is a CRL of this CA's; None when missing or unusable."""
    if der is None:
        return None
    try:
        crl = x509.load_der_x509_crl(der)
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        signed = crl.is_signature_valid(ca_key)
    except (ValueError, TypeError, x509.ExtensionNotFound):
        return None
    # A CRL of another key (say, left over from before a `ca init`) is never served.
    if not signed or crl.next_update_utc is None:
        return None
    return _CRL(der, number, crl.next_update_utc)


def make_backend(settings: LocalCASettings) -> KeyBackend:
    """The key backend the settings ask for."""
    if settings.pkcs11 is not None:
        from connectors.localca.pkcs11_keys import Pkcs11KeyBackend

        backend: KeyBackend = Pkcs11KeyBackend(settings.pkcs11, settings.key_type,
                                               lock_path=settings.dir / "pkcs11.lock")
        return backend
    return FileKeyBackend(settings.dir / "ca.key.pem", settings.key_type)


class LocalCAConnector:
    """A CA whose key this gateway holds; implements :class:`connectors.base.Connector`."""

    def __init__(
        self,
        name: str,
        settings: LocalCASettings,
        clock: Clock = utcnow,
        backend: KeyBackend | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = name
        self.settings = settings
        self.clock = clock
        self._sleep = sleep  # injected so tests drive the CRL schedule without waiting
        self._crl_stale = False
        self.backend = backend or make_backend(settings)
        self.ledger = make_ledger(name, settings)
        self._urls = LeafURLs(settings.crl_url(name), settings.ocsp_url(name))
        self._template: LeafTemplate | None = None
        self._crl: _CRL | None = None  # the newest CRL this process signed or loaded
        self._crl_lock = asyncio.Lock()  # one CRL check or signature at a time in this process
        self._refresher: asyncio.Task[None] | None = None
        self._ocsp: OCSPResponder | None = None
        self._issued_chain: tuple[bytes, ...] = ()  # what clients get above their leaf

    @property
    def cert_path(self) -> Path:
        """Where the CA certificate (and chain) is kept."""
        return self.settings.dir / "ca.pem"

    async def start(self) -> None:
        """Open the key and ledger; create a file-backed CA on first start; publish a CRL.

        A failure leaves as one line naming the CA and the cause.
        """
        with starting(self.name):
            await self._start()

    async def _start(self) -> None:
        self.settings.dir.mkdir(parents=True, exist_ok=True)
        file_backend = self.settings.pkcs11 is None
        # A file CA is created on first start; a token CA only by `ca init`, deliberately.
        await self.backend.open(create=file_backend and not self.cert_path.exists())
        try:
            ca = await self._load_or_create_ca(file_backend)
            self._template = LeafTemplate.of(ca, self._urls)
            self._issued_chain = _chain_for_clients(ca)
            await self.ledger.open()
            self._ocsp = OCSPResponder(self.settings, ca, self.backend, self.ledger, self.clock)
            await self._ocsp.start()
            await self.refresh_crl()
        except BaseException:
            await self.aclose()
            raise
        self._refresher = asyncio.create_task(self._refresh_loop(), name=f"localca-{self.name}-crl")

    async def _load_or_create_ca(self, may_create: bool) -> CAIdentity:
        if not self.cert_path.exists():
            if not may_create:
                raise CAConfigError(
                    f"CA certificate {self.cert_path} does not exist; run "
                    f"`acme-gateway ca init --ca {self.name}` "
                    "(then `ca import-cert` when an external root signs it)"
                )
            certs = await new_ca_certificates(self.settings, self.name, self.backend, self.clock())
            self.cert_path.write_bytes(chain_pem(certs))
        return self._load_ca()

    def _load_ca(self) -> CAIdentity:
        try:
            certs = load_chain_pem(self.cert_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise CAConfigError(f"cannot read the CA certificate {self.cert_path}: {exc}") from exc
        cert = certs[0]
        if cert.public_key() != self.backend.public_key():
            raise CAConfigError(
                f"the CA certificate {self.cert_path} does not match the key "
                f"({self.backend.describe()}); restore the matching pair or re-run `ca init`"
            )
        found = key_type_of(cert.public_key())
        if found != self.settings.key_type:
            raise CAConfigError(f"the CA key is {found}, but key_type is {self.settings.key_type}")
        chain = tuple(c.public_bytes(Encoding.DER) for c in certs[1:])
        return CAIdentity.of(cert, chain, hash_for(self.settings.key_type))

    def _identity(self) -> CAIdentity:
        return self._leaf_template().ca

    def _leaf_template(self) -> LeafTemplate:
        if self._template is None:
            raise CAConfigError(f"local CA {self.name!r} is not started; call start() first")
        return self._template

    async def issue(self, request: IssueRequest) -> IssueResult:
        """Sign a leaf for the request's CSR at once; the local CA never defers."""
        template = self._leaf_template()
        try:
            csr, public_key = request.parsed_csr()
            # The core's SPKI belongs to the key only when it handed over that key too.
            spki = request.csr_spki if public_key is request.csr_key else None
            leaf = leaf_tbs(request, csr, public_key, template,
                            self.clock() - self.settings.backdate, spki)
        except ValueError as exc:
            return Rejected(f"the local CA cannot use this request: {exc}")
        # Nothing to look for when the core says no earlier submission can exist.
        if not request.first_submission:
            earlier = await self._issued_before(request.request_id, public_key)
            if earlier is not None:
                return Issued(earlier, self._issued_chain)
        key = self.backend.signing_key()
        signer = template.signer
        der = await self.backend.run(lambda: signer.certificate(key, leaf.tbs))
        await self.ledger.record_issued(leaf.serial, leaf.not_after, request.request_id, der)
        return Issued(der, self._issued_chain)

    async def _issued_before(self, request_id: str, public_key: CertificatePublicKeyTypes
                             ) -> bytes | None:
        """The certificate already issued for this request and key, if any.

        A gateway that dies after the CA signed but before it stored the
        certificate runs the request again (another node, after a restart):
        it gets the same certificate, so every request is issued once.
        """
        der = await self.ledger.issued_for(request_id)
        if der is None or x509.load_der_x509_certificate(der).public_key() != public_key:
            return None
        return der

    async def poll(self, ref: str) -> IssueResult:
        """Nothing is ever pending at the local CA."""
        raise UnknownCertificate(f"the local CA {self.name!r} has no pending request {ref!r}")

    async def revoke(self, cert_der: bytes, reason: RevocationReason) -> None:
        """Record the revocation (OCSP answers from it at once) and publish a new CRL."""
        cert = self._own_certificate(cert_der)
        fresh = await self.ledger.revoke(
            cert.serial_number, int(reason), self.clock(), cert.not_valid_after_utc
        )
        if not fresh:
            raise AlreadyRevoked(f"serial {cert.serial_number:x} is already revoked")
        try:
            await self.refresh_crl()
        except ConnectorError as exc:
            # The revocation is recorded: failing here would make a retry meet AlreadyRevoked.
            # The next CRL request or scheduled refresh signs the CRL instead.
            self._crl_stale = True
            log.warning("local CA %s: CRL after revocation deferred: %s", self.name, exc)

    def _own_certificate(self, cert_der: bytes) -> x509.Certificate:
        ca = self._identity()
        try:
            cert = x509.load_der_x509_certificate(cert_der)
            cert.verify_directly_issued_by(ca.cert)
        except (ValueError, TypeError) as exc:
            raise UnknownCertificate(
                f"the certificate was not issued by the local CA {self.name!r} ({exc})"
            ) from exc
        except InvalidSignature as exc:  # a look-alike issuer name on another key's certificate
            raise UnknownCertificate(
                f"the certificate was not signed by the local CA {self.name!r}'s key"
            ) from exc
        return cert

    async def ca_certs(self) -> tuple[bytes, ...]:
        """The CA certificate, then any chain above it."""
        ca = self._identity()
        return (ca.cert_der, *ca.chain_der)

    async def root_crl_der(self) -> bytes | None:
        """The root's CRL of a two-tier CA, as its offline root signed it (None: single-tier)."""
        try:
            return await asyncio.to_thread((self.settings.dir / ROOT_CRL).read_bytes)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CAUnavailable(f"cannot read the root CRL of {self.name!r}: {exc}") from exc

    async def alternate_chains(self) -> tuple[tuple[bytes, ...], ...]:
        """Chains configured besides the CA's own (``alternate_chain_files``)."""
        return self.settings.alternate_chains

    async def check(self) -> None:
        """Raise when the key cannot sign right now."""
        self._identity()
        await self.backend.check()

    async def aclose(self) -> None:
        """Stop the CRL schedule, flush the ledger, release the key."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        await self.ledger.close()
        await self.backend.close()

    # -- revocation data -------------------------------------------------------------

    @property
    def _crl_path(self) -> Path:
        return self.settings.dir / "crl.der"

    async def refresh_crl(self) -> bytes:
        """Sign and publish a new CRL with every unexpired revocation; return the CRL now held.

        That is the new CRL, or a newer one another process published meanwhile.
        """
        async with self._crl_lock:
            return await self._sign_crl()

    async def _sign_crl(self) -> bytes:
        ca = self._identity()
        now = self.clock()
        # The number and the revocations come from one ledger transaction: across processes,
        # a higher CRL number never lists fewer revocations (see CALedger.crl_snapshot).
        snap = await self.ledger.crl_snapshot(now)
        next_update = now + self.settings.crl_validity
        key = self.backend.signing_key()
        crl = await self.backend.run(
            lambda: build_crl(key, ca, snap.entries, snap.number, now, next_update)
        )
        signed = _CRL(crl.public_bytes(Encoding.DER), snap.number, next_update)
        # Another process may have allocated a higher number after ours and published its CRL
        # while this one was being signed; the check of crl.der and the replace happen under
        # the ledger's write lock, which every process takes to publish, so no process can
        # publish between them and crl.der only ever moves to a higher number.
        ca_key = self.backend.public_key()
        self._hold(await self.ledger.exclusive(lambda: self._publish(signed, ca_key)))
        self._crl_stale = False
        held = self._held()
        await self.ledger.share_crl(held.number, held.der)  # for hosts that share the ledger
        return held.der

    def _publish(self, signed: _CRL, ca_key: CertificateIssuerPublicKeyTypes) -> _CRL:
        """Write ``signed`` to crl.der unless it holds a newer CRL; return the newer of the two.

        Runs in the ledger's thread, under its write lock.
        """
        published = _read_crl(self._crl_path, ca_key)
        if published is not None and published.number >= signed.number:
            return published
        # The temporary name is unique to this process and connector, so two writers never
        # share one; os.replace is atomic, so a reader of crl.der never sees half a CRL.
        tmp = self._crl_path.with_name(f"crl.der.{os.getpid()}.{id(self):x}.tmp")
        try:
            tmp.write_bytes(signed.der)
            os.replace(tmp, self._crl_path)
        except OSError as exc:
            raise CAUnavailable(f"cannot publish the CRL {self._crl_path}: {exc}") from exc
        return signed

    def _hold(self, crl: _CRL) -> None:
        # Never step back to a lower CRL number than the one already held.
        if self._crl is None or crl.number > self._crl.number:
            self._crl = crl

    def _held(self) -> _CRL:
        if self._crl is None:
            raise CAConfigError(f"local CA {self.name!r} has no CRL; call start() first")
        return self._crl

    async def crl_der(self) -> bytes:
        """The newest CRL any process sharing this CA published; a new one when none fits.

        A new CRL is signed when the held one has run out or a revocation is missing
        from every CRL signed so far (say, its process could not sign one).
        """
        async with self._crl_lock:
            if self._crl_stale or self._crl is None:
                return await self._sign_crl()
            # One small ledger read per CRL request. The ledger allocates CRL numbers for
            # every process, so a number above the held one means another process signed
            # a newer CRL: load crl.der, where it publishes it (adopted only if newer still).
            state = await self.ledger.crl_state()
            if state.number > self._crl.number:
                published = await asyncio.to_thread(
                    _read_crl, self._crl_path, self.backend.public_key()
                )
                if published is not None:
                    self._hold(published)
            if state.number > self._crl.number:  # signed on another host sharing the ledger
                shared = _parse_crl(await self.ledger.shared_crl(), self.backend.public_key())
                if shared is not None:
                    self._hold(shared)
            # Still behind: the newest CRL number is not on disk (its process is signing it
            # right now, or failed to). Signing here is then the only way to be sure that
            # every revocation it would list is served.
            behind = state.number > self._crl.number or state.uncovered
            if behind or self.clock() >= self._crl.next_update:
                return await self._sign_crl()
            return self._crl.der

    async def ocsp_response(self, request_der: bytes) -> bytes:
        """An RFC 6960 response (DER) to one OCSP request; never raises for bad input."""
        if self._ocsp is None:
            raise CAConfigError(f"local CA {self.name!r} is not started; call start() first")
        return await self._ocsp.respond(request_der)

    async def _refresh_loop(self) -> None:
        period = self.settings.crl_refresh.total_seconds()
        while True:
            await self._sleep(period)
            try:
                await self.refresh_crl()
            except ConnectorError as exc:
                # The published CRL stays valid until its nextUpdate; try again next period.
                log.warning("local CA %s: CRL refresh failed: %s", self.name, exc)


def _chain_for_clients(ca: CAIdentity) -> tuple[bytes, ...]:
    """The issuing CA and any intermediates, never a root above it (clients hold roots).

    A single-tier CA is its own root and is sent, as it always was.
    """
    above = tuple(der for der in ca.chain_der
                  if not is_self_signed(x509.load_der_x509_certificate(der)))
    return (ca.cert_der, *above)
