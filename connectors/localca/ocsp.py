"""OCSP responder (RFC 6960) of the local CA.

Answers ``good`` for serials the ledger says this CA issued, ``revoked`` with
time and reason, and ``unknown`` for any other issuer or serial. Responses are
signed by the CA key, or (``ocsp_responder = "delegated"``) by a short-lived
responder certificate with id-kp-OCSPSigning and id-pkix-ocsp-nocheck, whose
software key spares a token one signature per OCSP request.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from connectors.base import ConnectorError
from connectors.localca.certs import CRL_REASONS, CAIdentity, random_serial
from connectors.localca.keys import KeyBackend
from connectors.localca.settings import LocalCASettings
from connectors.localca.store import CALedger, SerialStatus

if TYPE_CHECKING:
    from connectors.localca.pgledger import PgCALedger

log = logging.getLogger(__name__)

RESPONDER_VALIDITY = timedelta(days=30)

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def _digest(alg: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(alg)
    h.update(data)
    return h.finalize()


def _key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING contents that RFC 6960 issuerKeyHash covers."""
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    raise TypeError(f"unsupported CA key {type(key).__name__}")


def unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    """An unsigned error response (malformedRequest, tryLater, internalError, ...)."""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


class OCSPResponder:
    """Builds and signs one OCSP response per request."""

    def __init__(
        self,
        settings: LocalCASettings,
        ca: CAIdentity,
        backend: KeyBackend,
        ledger: CALedger | PgCALedger,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.ca = ca
        self.backend = backend
        self.ledger = ledger
        self.clock = clock
        name_der = ca.cert.subject.public_bytes()
        bits = _key_bits(ca.cert)
        # Precomputed issuer hashes per algorithm: a request matches when both are equal.
        self._issuer = {n: (_digest(f(), name_der), _digest(f(), bits)) for n, f in _HASHES.items()}
        self._delegate: tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes] | None = None

    async def start(self) -> None:
        """Load or renew the delegated responder certificate when configured."""
        if self.settings.ocsp_responder == "delegated":
            self._delegate = await self._delegated_responder()

    async def respond(self, request_der: bytes) -> bytes:
        """The DER response to ``request_der``; malformed input gets malformedRequest."""
        try:
            req = ocsp.load_der_ocsp_request(request_der)
            alg_name = req.hash_algorithm.name
            name_hash, key_hash, serial = (
                req.issuer_name_hash,
                req.issuer_key_hash,
                req.serial_number,
            )
        except (ValueError, TypeError):
            return unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        except Exception:  # noqa: BLE001 - e.g. an unsupported hash algorithm (UnsupportedAlgorithm)
            return unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        try:
            status = SerialStatus("unknown")
            if self._issuer.get(alg_name) == (name_hash, key_hash):
                status = await self.ledger.status(serial)
            return await self._sign(self._builder(req, status, alg_name))
        except ConnectorError as exc:
            log.warning("OCSP answer failed, answering tryLater: %s", exc)
            return unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)

    def _builder(
        self, req: ocsp.OCSPRequest, status: SerialStatus, alg_name: str
    ) -> ocsp.OCSPResponseBuilder:
        now = self.clock()
        cert_status = {
            "good": ocsp.OCSPCertStatus.GOOD,
            "revoked": ocsp.OCSPCertStatus.REVOKED,
        }.get(status.state, ocsp.OCSPCertStatus.UNKNOWN)
        revoked = status.revoked
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=req.issuer_name_hash,
            issuer_key_hash=req.issuer_key_hash,
            serial_number=req.serial_number,
            algorithm=_HASHES[alg_name](),
            cert_status=cert_status,
            this_update=now,
            next_update=now + self.settings.ocsp_validity,
            revocation_time=revoked.revoked_at if revoked else None,
            revocation_reason=CRL_REASONS.get(revoked.reason) if revoked else None,
        )
        try:
            nonce = req.extensions.get_extension_for_class(x509.OCSPNonce).value
            builder = builder.add_extension(nonce, False)
        except x509.ExtensionNotFound:
            pass
        return builder

    async def _sign(self, builder: ocsp.OCSPResponseBuilder) -> bytes:
        enc = serialization.Encoding.DER
        if self._delegate is not None:
            cert, key = self._delegate
            builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, cert).certificates(
                [cert]
            )
            return builder.sign(key, hashes.SHA256()).public_bytes(enc)
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, self.ca.cert)
        ca_key = self.backend.signing_key()
        response = await self.backend.run(lambda: builder.sign(ca_key, self.ca.hash_alg))
        return response.public_bytes(enc)

    # -- delegated responder ---------------------------------------------------------

    async def _delegated_responder(
        self,
    ) -> tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes]:
        cert_path = self.settings.dir / "ocsp.pem"
        key_path = self.settings.dir / "ocsp.key.pem"
        now = self.clock()
        if cert_path.exists() and key_path.exists():
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), None)
            fresh = cert.not_valid_after_utc - now > RESPONDER_VALIDITY / 3
            if (
                fresh
                and cert.issuer == self.ca.cert.subject
                and isinstance(key, ec.EllipticCurvePrivateKey)
            ):
                return cert, key
        key = ec.generate_private_key(ec.SECP256R1())
        builder = self._responder_builder(key.public_key(), now)
        ca_key = self.backend.signing_key()
        cert = await self.backend.run(lambda: builder.sign(ca_key, self.ca.hash_alg))
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = key_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        os.replace(tmp, key_path)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert, key

    def _responder_builder(
        self, public_key: ec.EllipticCurvePublicKey, now: datetime
    ) -> x509.CertificateBuilder:
        usage = x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False,
        )  # fmt: skip
        cns = self.ca.cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        ca_cn = str(cns[0].value) if cns else "local CA"
        # ub-common-name is 64 characters.
        subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, f"{ca_cn[:58]} OCSP")])
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.ca.cert.subject)
            .public_key(public_key)
            .serial_number(random_serial())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + RESPONDER_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(usage, True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False)
            .add_extension(x509.OCSPNoCheck(), False)
            .add_extension(self.ca.aki, False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
        )
