"""EST enrollment in the issuance core (RFC 7030): an EST request becomes an ordinary Order.

EST requesters have no ACME account. Each gets a synthetic account id
(``est:user:<name>``, ``est:cert:<sha256 of the client certificate>``), and its
order is created already authorized (the EST credentials stand in for
challenges): ``ready`` → ``processing`` with its CA job in one store unit. The
same job runner, connectors, certificate table and revocation then apply.

A device that was told ``202`` re-POSTs the same CSR. The order id is derived
from the requester and the CSR's SHA-256, so the re-POST finds the same order,
and two racing POSTs collide on the primary key instead of issuing twice. When
that order failed, the next attempt's id is derived from the failed one, so a
retry after a transient CA failure gets a fresh order, again exactly once.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import NoReturn

from cryptography import x509
from cryptography.x509.oid import AttributeOID

from connectors.base import Connector, ConnectorError
from gateway import audit
from gateway.config import ProfileSettings, Settings
from gateway.core import csr as csrs
from gateway.core import est_keygen as keygen
from gateway.core.est_names import identifiers_of, same_subject
from gateway.core.issuance import IssuanceService
from gateway.core.profiles import domain_allowed
from gateway.core.ratelimits.limiter import Requester
from gateway.core.revocation import serial_hex
from gateway.errors import ErrorKind, GatewayError
from gateway.model.clock import Clock
from gateway.model.records import (
    INVALID,
    PROCESSING,
    READY,
    VALID,
    Certificate,
    Identifier,
    Order,
    id_from_bytes,
)
from gateway.model.store import Conflict, Insert, Store

log = logging.getLogger("gateway.est")

# A failed order may be retried with the same CSR this many times before we stop chaining.
MAX_ATTEMPTS_PER_CSR = 20
CA_RETRY_SECONDS = 30
# Account-id prefixes of requesters that enroll without ACME (EST and SCEP devices).
NON_ACME_REQUESTERS = ("est:", "scep:")


@dataclass(frozen=True)
class EnrollRequest:
    """One simpleenroll / simplereenroll / serverkeygen request, already authenticated.

    ``channel_binding`` is the connection's tls-unique when the label demands
    proof of possession (RFC 7030 §3.5), else None. ``renewing`` is the DER of the
    client certificate being renewed (simplereenroll only).
    """

    requester: str
    profile: str
    csr_der: bytes
    wait_seconds: float = 5.0
    channel_binding: bytes | None = None
    renewing: bytes | None = None
    # What the requester may ask for on a first enrollment: name patterns (glob or
    # "re:"), from its credentials (gateway.est.grants). Empty: nothing.
    allowed_names: tuple[str, ...] = ()
    label: str = ""


@dataclass(frozen=True)
class IssuedHere:
    """A certificate this gateway issued, and the order it was issued for."""

    certificate: Certificate
    order: Order | None  # None only if the order row was lost

    @property
    def via_acme(self) -> bool:
        """Whether an ACME account (not an EST requester) asked for it."""
        return self.order is not None and \
            not self.order.account_id.startswith(NON_ACME_REQUESTERS)


@dataclass(frozen=True)
class EnrollResult:
    """The certificate (DER) once issued, or None while the CA or an approver decides."""

    order_id: str
    certificate_der: bytes | None


def order_id_for(requester: str, csr_der: bytes, supersedes: str) -> str:
    """The deterministic order id of one EST request (128 bits, URL-safe)."""
    digest = hashlib.sha256(
        b"\0".join([requester.encode(), hashlib.sha256(csr_der).digest(), supersedes.encode()]))
    return id_from_bytes(digest.digest()[:16])


def check_proof_of_possession(csr: x509.CertificateSigningRequest, binding: bytes) -> None:
    """The CSR's challengePassword must be the base64 tls-unique of this TLS connection."""
    try:
        value = csr.attributes.get_attribute_for_oid(AttributeOID.CHALLENGE_PASSWORD).value
    except x509.AttributeNotFound:
        raise csrs.bad_csr("proof of possession is required: put the base64 tls-unique "
                           "value of this TLS connection in the CSR's challengePassword") from None
    expected = base64.b64encode(binding)
    if not hmac.compare_digest(value.strip(), expected):
        raise csrs.bad_csr("the CSR's challengePassword is not the tls-unique value of this "
                           "TLS connection (proof of possession failed)")


class EstService:
    """CA certificates, enrollment, re-enrollment and client-certificate status for EST."""

    def __init__(self, settings: Settings, store: Store, clock: Clock,
                 connectors: Mapping[str, Connector], issuance: IssuanceService) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.connectors = connectors
        self.issuance = issuance

    def profile(self, name: str) -> ProfileSettings:
        """A policy profile by name (EST labels name theirs in the config)."""
        return self.issuance.orders.profile(name)

    # -- CA certificates -----------------------------------------------------------

    async def ca_certs(self, profile: str) -> tuple[bytes, ...]:
        """The certificates of the CA that issues for ``profile``, issuing CA first."""
        ca = self.profile(profile).ca
        try:
            certs = await self.connectors[ca].ca_certs()
        except ConnectorError as exc:
            log.warning("CA certificates of %s unavailable: %s", ca, exc)
            raise GatewayError(ErrorKind.CA_UNAVAILABLE, f"the CA {ca!r} cannot be reached now",
                               retry_after=CA_RETRY_SECONDS) from exc
        if not certs:
            raise GatewayError(ErrorKind.CA_UNAVAILABLE, f"the CA {ca!r} has no certificate yet",
                               retry_after=CA_RETRY_SECONDS)
        return certs

    async def trust_anchors(self, profiles: tuple[str, ...]) -> tuple[bytes, ...]:
        """CA certificates of these profiles' CAs, for verifying TLS client certificates.

        A CA that cannot answer now is skipped (and logged): the listener must still start.
        """
        out: list[bytes] = []
        for ca in sorted({self.profile(p).ca for p in profiles}):
            try:
                out.extend(await self.connectors[ca].ca_certs())
            except ConnectorError as exc:
                log.warning("CA %s gives no trust anchor for EST client certificates: %s",
                            ca, exc)
        return tuple(dict.fromkeys(out))

    async def client_certificate(self, cert_der: bytes) -> IssuedHere | None:
        """Our record of a TLS client certificate, if this gateway issued it.

        Forbidden when it is revoked, or when it was issued through ACME and its
        profile does not let ACME certificates authenticate to EST: proving control
        of one name over ACME must not open EST enrollment for any other.
        """
        try:
            serial = serial_hex(x509.load_der_x509_certificate(cert_der))
        except ValueError:
            return None
        cert = await self.store.get_certificate_by_serial(serial)
        if cert is None or cert.leaf_der != cert_der:
            return None
        if cert.revoked_at is not None:
            raise GatewayError(ErrorKind.UNAUTHORIZED, "the client certificate has been revoked")
        issued = IssuedHere(cert, await self.store.get_order(cert.order_id))
        if issued.via_acme and issued.order is not None:
            profile = self.settings.profiles.get(issued.order.profile)
            if profile is None or not profile.acme_certs_authenticate_est:
                raise GatewayError(ErrorKind.UNAUTHORIZED, (
                    "the client certificate was issued through ACME (profile "
                    f"{issued.order.profile!r}); ACME certificates authenticate to EST only "
                    "where their profile sets acme_certs_authenticate_est = true"))
        return issued

    async def record_refusal(self, actor: str, profile: str, detail: str) -> None:
        """Audit a refused EST credential (wrong password, untrusted or revoked certificate)."""
        await self.issuance.trail.record(audit.UNAUTHORIZED, actor=actor, profile=profile,
                                         result=ErrorKind.UNAUTHORIZED.value, detail=detail)

    # -- enrollment ----------------------------------------------------------------

    async def enroll(self, request: EnrollRequest) -> EnrollResult:
        """Check the CSR against the profile, find or create its order, wait briefly."""
        profile = self.profile(request.profile)
        renewed = await self._renewed(request) if request.renewing else None
        parsed = csrs.parse_csr(request.csr_der)
        # ACME's order, through the same checker, so a request gets ACME's reason: the
        # profile's names (newOrder), the requester's right to them (the authorizations:
        # its grant, or the certificate being renewed), then the CSR (finalize).
        rules = self.issuance.profiles
        idents = await rules.check_identifiers(profile, identifiers_of(parsed),
                                               actor=request.requester)
        if renewed is None:
            await self._check_grant(request, idents)
        else:
            check_same_names(parsed, idents, renewed)
        await rules.check_csr(profile, parsed, actor=request.requester)
        if request.channel_binding is not None:
            check_proof_of_possession(parsed.csr, request.channel_binding)
        order = await self._find_or_create(request, profile, idents, parsed)
        return await self.outcome(order.id, request.wait_seconds)

    async def outcome(self, order_id: str, wait_seconds: float) -> EnrollResult:
        """An enrollment's certificate, waiting up to ``wait_seconds`` for an unfinished one.

        Raises the order's error when it failed (a refusal by the CA or an approver).
        """
        order = await self._order(order_id)
        if order.status not in (VALID, INVALID):
            await self._run_if_due(order.id)
            await self.issuance.wait_for(order.id, wait_seconds)
            order = await self._order(order.id)
        return await self._result(order)

    async def server_keygen(self, request: EnrollRequest) -> tuple[bytes, bytes]:
        """Make a key and enroll a CSR for it: (PKCS#8 DER key, certificate DER).

        The key exists only in this answer, so the certificate must come within the
        wait bound; a CA that defers gets a 503 telling the client to use simpleenroll.
        """
        profile = self.profile(request.profile)
        template = csrs.parse_csr(request.csr_der)
        if request.channel_binding is not None:
            check_proof_of_possession(template.csr, request.channel_binding)
        key = await asyncio.to_thread(keygen.new_key, profile, template)
        own = replace(request, csr_der=keygen.csr_for(key, template.csr), channel_binding=None)
        result = await self.enroll(own)
        if result.certificate_der is None:
            raise GatewayError(ErrorKind.CA_UNAVAILABLE,
                               f"the CA did not issue within {request.wait_seconds:g} s; a "
                               "server-generated key is never kept, so use simpleenroll with "
                               "your own key for a CA that takes longer")
        return keygen.pkcs8_der(key), result.certificate_der

    async def _renewed(self, request: EnrollRequest) -> x509.Certificate:
        """The certificate being renewed, if it may renew on this request's profile (§4.2.2)."""
        assert request.renewing is not None
        issued = await self.client_certificate(request.renewing)
        if issued is None:
            reason = ("re-enrollment needs a client certificate that this gateway issued; use "
                      "simpleenroll for a first certificate")
        elif issued.certificate.not_after <= self.clock.now():
            reason = "the client certificate has expired; use simpleenroll for a new one"
        elif issued.order is not None and issued.order.profile != request.profile:
            reason = (f"the client certificate was issued under profile "
                      f"{issued.order.profile!r}; re-enroll through a label of that profile")
        else:
            return x509.load_der_x509_certificate(request.renewing)
        await self._refuse(request, reason)

    async def _check_grant(self, request: EnrollRequest,
                           idents: tuple[Identifier, ...]) -> None:
        """Every requested name must be one the requester's credentials are bound to."""
        outside = [i.value for i in idents
                   if not domain_allowed(request.allowed_names, i.value)]
        if not outside:
            return
        who = f"{request.requester} on label {request.label!r}"
        if not request.allowed_names:
            await self._refuse(request, f"{who} is bound to no names: give it some with "
                               "[est.users.NAME] names, or the label's names or cert_names")
        await self._refuse(request, f"{who} may not request {', '.join(outside)}; it may "
                           f"request {', '.join(request.allowed_names)}")

    async def _refuse(self, request: EnrollRequest, detail: str) -> NoReturn:
        await self.record_refusal(request.requester, request.profile, detail)
        raise GatewayError(ErrorKind.UNAUTHORIZED, detail)

    async def _run_if_due(self, order_id: str) -> None:
        """Start the order's job now if it is due: a re-POST need not wait for the next scan."""
        job = await self.store.get_job(order_id)
        if job is not None and job.state in ("queued", "waiting") and job.run_at is not None \
                and job.run_at <= self.clock.now():
            await self.issuance.run_due(job)

    async def _order(self, order_id: str) -> Order:
        order = await self.store.get_order(order_id)
        if order is None:  # only if the store lost a committed row
            raise GatewayError(ErrorKind.SERVER_INTERNAL, "the request's order disappeared")
        return order

    async def _find_or_create(self, request: EnrollRequest, profile: ProfileSettings,
                              idents: tuple[Identifier, ...], parsed: csrs.ParsedCSR) -> Order:
        supersedes = ""
        for _ in range(MAX_ATTEMPTS_PER_CSR):
            order_id = order_id_for(request.requester, request.csr_der, supersedes)
            order = await self.store.get_order(order_id)
            if order is None:
                order = await self._create(order_id, request, profile, idents, parsed)
            if not _retryable(order):
                return order
            supersedes = order.id
        raise GatewayError(ErrorKind.RATE_LIMITED,
                           "this CSR failed too many times; make a new CSR")

    async def _create(self, order_id: str, request: EnrollRequest, profile: ProfileSettings,
                      idents: tuple[Identifier, ...], parsed: csrs.ParsedCSR) -> Order:
        now = self.clock.now()
        ready = Order(id=order_id, account_id=request.requester, status=READY,
                      identifiers=idents, authz_ids=(), profile=profile.name, created_at=now,
                      expires=now + timedelta(seconds=self.settings.acme.order_lifetime_seconds))
        started = ready.moved(PROCESSING, csr_der=request.csr_der)
        # The same intake as ACME finalize: the profile's rules were applied in enroll(),
        # so the job is marked checked, and the order is recorded as requested with it.
        job = self.issuance.admitted_job(order_id, now, job_id=order_id)
        unit = [Insert(started), Insert(job), self.issuance.requested_event(started, profile)]
        limits = self.issuance.limits  # a new enrollment draws on its requester's bucket
        try:
            if await limits.pay(limits.enrollment(request.requester, profile.name), unit,
                                Requester(request.requester, audit.names(idents), profile.name)):
                self.issuance.run_now(job, started, parsed)
                return started
        except Conflict:
            pass  # the same request arrived twice at once: the other one created it
        return await self._order(order_id)

    async def _result(self, order: Order) -> EnrollResult:
        if order.status == VALID and order.certificate_id:
            cert = await self.store.get_certificate(order.certificate_id)
            if cert is not None:
                return EnrollResult(order.id, cert.leaf_der)
        if order.status == INVALID:
            error = order.error or {}
            try:
                kind = ErrorKind(error.get("kind", ErrorKind.SERVER_INTERNAL.value))
            except ValueError:
                kind = ErrorKind.SERVER_INTERNAL
            raise GatewayError(kind, str(error.get("detail", "the request failed")))
        return EnrollResult(order.id, None)



def check_same_names(parsed: csrs.ParsedCSR, idents: tuple[Identifier, ...],
                     old: x509.Certificate) -> None:
    """A renewal asks for the subject and names of the certificate it renews (§4.2.2)."""
    if not same_subject(parsed.csr.subject, old.subject):
        raise csrs.bad_csr("the CSR's subject differs from the certificate being renewed")
    if set(idents) != set(identifiers_of(old)):
        raise csrs.bad_csr("the CSR's names differ from those of the certificate being renewed")


def _retryable(order: Order) -> bool:
    """A failed order that a re-POST of the same CSR may replace: the CA was unreachable.

    Any other failure (a CA or approver refusal) is final and is reported on every re-POST.
    """
    return order.status == INVALID and (order.error or {}).get("kind") == \
        ErrorKind.CA_UNAVAILABLE.value
