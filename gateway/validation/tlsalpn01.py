"""TLS-ALPN-01 (RFC 8737; RFC 8738 §6 for IP identifiers).

Connect to a checked address on ``tlsalpn01_port``, offer only the ALPN protocol
``acme-tls/1`` with SNI set to the name (or, for an IP identifier, its reverse
name under in-addr.arpa / ip6.arpa), and judge the self-signed certificate
presented: exactly one subjectAltName equal to the identifier, and a critical
id-pe-acmeIdentifier extension holding the OCTET STRING SHA-256(key
authorization). The certificate's chain and validity are deliberately ignored.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import ssl
from collections.abc import Callable

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from gateway.errors import ErrorKind
from gateway.validation import ChallengeTask
from gateway.validation.attempt import Attempt, ChallengeError
from gateway.validation.dnsclient import DnsClient
from gateway.validation.netguard import IPAddress, NetworkGuard
from gateway.validation.settings import ValidationSettings
from gateway.validation.targets import note_address, resolve_target, reverse_name, try_in_order

ACME_TLS_ALPN = "acme-tls/1"
ID_PE_ACME_IDENTIFIER = ObjectIdentifier("1.3.6.1.5.5.7.1.31")


def acme_identifier_value(key_authorization: str) -> bytes:
    """The DER extension value expected: OCTET STRING (32 bytes) of SHA-256(key authorization)."""
    return b"\x04\x20" + hashlib.sha256(key_authorization.encode()).digest()


def client_context() -> ssl.SSLContext:
    """A TLS ≥1.2 client context offering only acme-tls/1 and trusting any certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the certificate is self-signed by design (RFC 8737 §3)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols([ACME_TLS_ALPN])
    return context


class TlsAlpn01Checker:
    """Runs the TLS-ALPN-01 check of one attempt."""

    def __init__(self, dns: DnsClient, guard: NetworkGuard, settings: ValidationSettings) -> None:
        self._dns = dns
        self._guard = guard
        self._port = settings.tlsalpn01_port
        self._context = client_context()

    async def check(
        self, task: ChallengeTask, attempt: Attempt, remaining: Callable[[], float]
    ) -> None:
        """Handshake and judge the validation certificate; raise ChallengeError on failure."""
        host = task.identifier_value
        is_ip = task.identifier_type == "ip"
        sni = reverse_name(host) if is_ip else host
        record = attempt.record(hostname=host, port=self._port, serverName=sni)
        try:
            blocked_kind = ErrorKind.REJECTED_IDENTIFIER if is_ip else ErrorKind.DNS
            target = await resolve_target(host, self._dns, self._guard, attempt, blocked_kind)
            record["addressesResolved"] = [str(a) for a in target.resolved]

            async def handshake(address: IPAddress) -> bytes:
                note_address(record, address)
                return await self._handshake(address, sni, attempt)

            der = await try_in_order(target, attempt, remaining, handshake)
            check_certificate(der, task)
        except ChallengeError as exc:
            record["error"] = f"{exc.kind.value}: {exc.detail}"
            raise

    async def _handshake(self, address: IPAddress, sni: str, attempt: Attempt) -> bytes:
        where = f"{address} port {self._port} (SNI {sni})"
        attempt.enter(ErrorKind.CONNECTION, f"connecting to {where}")
        try:
            _, writer = await asyncio.open_connection(
                str(address), self._port, ssl=self._context, server_hostname=sni
            )
        except ssl.SSLError as exc:
            raise ChallengeError(
                ErrorKind.TLS,
                f"TLS handshake with {where} failed: {exc.reason or exc}",
                retriable=True,
            ) from exc
        except OSError as exc:
            raise ChallengeError(
                ErrorKind.CONNECTION,
                f"cannot connect to {where}: {exc.strerror or exc}",
                retriable=True,
            ) from exc
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            protocol = ssl_object.selected_alpn_protocol() if ssl_object else None
            der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        finally:
            writer.transport.abort()  # no close_notify dance with a peer that may not answer
        if protocol != ACME_TLS_ALPN:
            raise ChallengeError(
                ErrorKind.TLS, f"{where} did not negotiate ALPN {ACME_TLS_ALPN} (got {protocol!r})"
            )
        if not der:
            raise ChallengeError(ErrorKind.TLS, f"{where} presented no certificate")
        return bytes(der)


def check_certificate(der: bytes, task: ChallengeTask) -> None:
    """The certificate must name exactly the identifier and carry the critical acmeIdentifier."""
    try:
        cert = x509.load_der_x509_certificate(der)
        sans = list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound as exc:
        raise _incorrect("has no subjectAltName extension") from exc
    except ValueError as exc:
        raise _incorrect(f"cannot be parsed: {exc}") from exc
    if len(sans) != 1 or not _names_identifier(sans[0], task):
        shown = ", ".join(str(getattr(s, "value", s)) for s in sans)
        raise _incorrect(
            f"must have exactly one subjectAltName, {task.identifier_value}; it has: {shown}"
        )
    try:
        extension = cert.extensions.get_extension_for_oid(ID_PE_ACME_IDENTIFIER)
    except x509.ExtensionNotFound as exc:
        raise _incorrect("has no id-pe-acmeIdentifier extension") from exc
    if not extension.critical:
        raise _incorrect("has an id-pe-acmeIdentifier extension that is not critical")
    value = getattr(extension.value, "value", b"")
    if value != acme_identifier_value(task.key_authorization):
        raise _incorrect(
            "has an id-pe-acmeIdentifier that does not match this challenge's key authorization"
        )


def _names_identifier(name: x509.GeneralName, task: ChallengeTask) -> bool:
    if task.identifier_type == "ip":
        return isinstance(name, x509.IPAddress) and name.value == ipaddress.ip_address(
            task.identifier_value
        )
    expected = task.identifier_value.rstrip(".").lower()
    return isinstance(name, x509.DNSName) and name.value.rstrip(".").lower() == expected


def _incorrect(what: str) -> ChallengeError:
    return ChallengeError(ErrorKind.INCORRECT_RESPONSE, f"the validation certificate {what}")
