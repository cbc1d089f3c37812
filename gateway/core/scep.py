"""SCEP enrollment in the issuance core (RFC 8894): the EST intake, reached with a password.

A SCEP request is authorized by the challengePassword of its CSR: the label's
static password, or a one-time password issued by an operator
(:meth:`ScepService.issue_otp`), as NDES does. Renewal (RenewalReq) is
authorized instead by the signature of a certificate this gateway issued. Then
the request goes through :meth:`gateway.core.est.EstService.enroll`: the same
profile checks, weak-key checks, grant of names, rate limits, approvals,
orders, CA jobs and audit events as EST.

Requesters are synthetic accounts, like EST's: ``scep:label:<label>`` for the
static password, ``scep:otp:<first 16 hex digits of the password's SHA-256>``
for a one-time password, ``scep:cert:<SHA-256 of the certificate>`` for a
renewal.

A transactionID is bound, on its first request, to its order, to the CSR and
to the key that signed it. The same request sent again (a device retrying) or
a CertPoll from that key gets the order's state; a new CSR from that key is a
new enrollment (strongSwan derives the transactionID from the key); the same
transactionID from another key is refused and audited (a replay or a
collision), and so is a one-time password presented a second time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import NoReturn

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import AttributeOID

from gateway import audit
from gateway.core import csr as csrs
from gateway.core.est import EnrollRequest, EnrollResult, EstService
from gateway.errors import ErrorKind, GatewayError
from gateway.model.clock import Clock
from gateway.model.records import ScepOtp, ScepTransaction
from gateway.model.store import Conflict, Insert, Store, Update

OTP_BYTES = 16


@dataclass(frozen=True)
class ScepGate:
    """How one SCEP label authorizes a first enrollment."""

    label: str
    profile: str
    names: tuple[str, ...] = ()  # what every authorized request of the label may ask for
    static_password: str | None = None  # None: the label takes no static password
    one_time_passwords: bool = False
    otp_lifetime_seconds: int = 86400
    wait_seconds: float = 5.0


@dataclass(frozen=True)
class ScepRequest:
    """A verified, decrypted PKCSReq or RenewalReq."""

    transaction_id: str
    signer_der: bytes  # the certificate that signed the pkiMessage
    csr_der: bytes
    renewal: bool = False


def key_sha256(cert_der: bytes) -> str:
    """SHA-256 (hex) of a certificate's SubjectPublicKeyInfo: the key that signs a transaction."""
    spki = x509.load_der_x509_certificate(cert_der).public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def otp_id(password: str) -> str:
    """The stored id of a one-time password: its SHA-256 (the password itself is never kept)."""
    return hashlib.sha256(password.encode()).hexdigest()


def challenge_password(csr_der: bytes) -> str | None:
    """The CSR's challengePassword attribute, if any."""
    csr = csrs.parse_csr(csr_der).csr
    try:
        value = csr.attributes.get_attribute_for_oid(AttributeOID.CHALLENGE_PASSWORD).value
    except x509.AttributeNotFound:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class OtpIssuer:
    """Issues one-time SCEP challenge passwords (``acme-gateway scep otp``), audited."""

    def __init__(self, store: Store, clock: Clock, trail: audit.AuditTrail) -> None:
        self.store = store
        self.clock = clock
        self.trail = trail

    async def issue(self, gate: ScepGate, names: tuple[str, ...], actor: str) -> str:
        """A new one-time password for ``gate``'s label, bound to ``names`` (and the label's).

        Only its SHA-256 is stored: the password is shown once, to the operator.
        """
        password = secrets.token_urlsafe(OTP_BYTES)
        now = self.clock.now()
        otp = ScepOtp(id=otp_id(password), label=gate.label, names=names, created_at=now,
                      expires=now + timedelta(seconds=gate.otp_lifetime_seconds))
        await self.store.apply([Insert(otp), self.trail.event(
            audit.SCEP_OTP_ISSUED, actor=actor, identifiers=names, profile=gate.profile,
            request_id=otp.id[:16], extra={"label": gate.label})])
        return password


class ScepService:
    """One-time passwords, transactions and enrollment for SCEP, on the EST intake."""

    def __init__(self, store: Store, clock: Clock, est: EstService,
                 trail: audit.AuditTrail) -> None:
        self.store = store
        self.clock = clock
        self.est = est
        self.otps = OtpIssuer(store, clock, trail)

    async def enroll(self, gate: ScepGate, request: ScepRequest) -> EnrollResult:
        """A PKCSReq or RenewalReq: its order's state, creating the order on first sight.

        The same request again gets the same order. A new CSR under a transactionID
        this key already used (strongSwan derives the id from the key) is a new
        enrollment, authorized afresh; from another key it is refused.
        """
        key = f"{gate.label}/{request.transaction_id}"
        known = await self.store.get_scep_transaction(key)
        if known is not None:
            await self._same_signer(gate, known, request)
            if known.csr_sha256 == hashlib.sha256(request.csr_der).hexdigest():
                return await self._outcome(gate, known)
        enroll = await self._authorize(gate, request, key)
        result = await self.est.enroll(enroll)
        bound = ScepTransaction(
            id=key, order_id=result.order_id, requester=enroll.requester,
            signer_key_sha256=key_sha256(request.signer_der),
            csr_sha256=hashlib.sha256(request.csr_der).hexdigest(), created_at=self.clock.now())
        try:
            await self.store.apply([Insert(bound) if known is None else
                                    Update(bound, expect=known.status)])
        except Conflict:
            pass  # the same transaction sent twice at once: the first one recorded it
        return result

    async def poll(self, gate: ScepGate, transaction_id: str, signer_der: bytes) -> EnrollResult:
        """CertPoll (GetCertInitial): the state of a transaction, asked by the key that began it."""
        known = await self.store.get_scep_transaction(f"{gate.label}/{transaction_id}")
        if known is None or known.signer_key_sha256 != key_sha256(signer_der):
            raise GatewayError(ErrorKind.NOT_FOUND, f"no transaction {transaction_id!r} of "
                               f"this key on label {gate.label!r}; send the PKCSReq first")
        return await self._outcome(gate, known)

    async def certificate(self, serial: int, signer_der: bytes) -> bytes:
        """GetCert: a certificate this gateway issued, for the holder of its key only."""
        cert = await self.store.get_certificate_by_serial(f"{serial:x}")
        if cert is None or key_sha256(cert.leaf_der) != key_sha256(signer_der):
            raise GatewayError(ErrorKind.NOT_FOUND,
                               f"no certificate with serial {serial:x} for this key")
        return cert.leaf_der

    async def _outcome(self, gate: ScepGate, known: ScepTransaction) -> EnrollResult:
        if await self.store.get_order(known.order_id) is None:
            raise GatewayError(ErrorKind.BAD_CSR, "this transaction was refused; send a new "
                               "request with a new transactionID")
        return await self.est.outcome(known.order_id, gate.wait_seconds)

    async def _same_signer(self, gate: ScepGate, known: ScepTransaction,
                           request: ScepRequest) -> None:
        if known.signer_key_sha256 == key_sha256(request.signer_der):
            return
        await self._refuse(gate, "scep:anonymous", (
            f"transactionID {request.transaction_id!r} is already bound to a request signed "
            "by another key; a new request needs a new transactionID"))

    async def _authorize(self, gate: ScepGate, request: ScepRequest, key: str) -> EnrollRequest:
        base = EnrollRequest(requester="", profile=gate.profile, csr_der=request.csr_der,
                             wait_seconds=gate.wait_seconds, label=gate.label)
        if request.renewal:
            requester = f"scep:cert:{hashlib.sha256(request.signer_der).hexdigest()}"
            return replace(base, requester=requester, renewing=request.signer_der)
        password = challenge_password(request.csr_der)
        if password is None:
            await self._refuse(gate, "scep:anonymous",
                               "the CSR has no challengePassword; put the label's password "
                               "or a one-time password from the operator in it")
        if gate.static_password is not None and \
                hmac.compare_digest(password.encode(), gate.static_password.encode()):
            return replace(base, requester=f"scep:label:{gate.label}", allowed_names=gate.names)
        if gate.one_time_passwords:
            names = await self._redeem(gate, password, key)
            return replace(base, requester=f"scep:otp:{otp_id(password)[:16]}",
                           allowed_names=tuple(dict.fromkeys(gate.names + names)))
        await self._refuse(gate, "scep:anonymous", "wrong challenge password")

    async def _redeem(self, gate: ScepGate, password: str, key: str) -> tuple[str, ...]:
        """Spend a one-time password (compare-and-set: exactly one request wins it)."""
        otp = await self.store.get_scep_otp(otp_id(password))
        actor = f"scep:otp:{otp_id(password)[:16]}"
        if otp is None or otp.label != gate.label:
            await self._refuse(gate, "scep:anonymous", "wrong challenge password")
        if otp.expires <= self.clock.now():
            await self._refuse(gate, actor, "the one-time password has expired; ask the "
                               "operator for a new one (acme-gateway scep otp)")
        used = replace(otp, status="used", used_by=key)
        if otp.status != "active" or not await self.store.apply([Update(used, expect="active")]):
            await self._refuse(gate, actor, "the one-time password has already been used; "
                               "ask the operator for a new one (acme-gateway scep otp)")
        return otp.names

    async def _refuse(self, gate: ScepGate, actor: str, detail: str) -> NoReturn:
        await self.est.record_refusal(actor, gate.profile, f"scep label {gate.label!r}: {detail}")
        raise GatewayError(ErrorKind.UNAUTHORIZED, detail)

