"""TLS-ALPN-01 (RFC 8737; RFC 8738 §6 for IP identifiers).

Connect to a checked address on ``tlsalpn01_port``, offer only the ALPN protocol
``acme-tls/1`` with SNI set to the name (or, for an IP identifier, its reverse
name under in-addr.arpa / ip6.arpa), and judge the self-signed certificate
presented: exactly one subjectAltName equal to the identifier, and a critical
id-pe-acmeIdentifier extension holding the OCTET STRING SHA-256(key
authorization). The certificate's chain and validity are deliberately ignored.

The connection ends politely: the client's Finished and a close_notify are sent
before the socket closes, so the responder (Caddy, lego, certbot) logs a
completed handshake, not "handshake: EOF". The peer's answering close_notify
is not awaited; the transport gives up on it after ``CLOSE_NOTIFY_SECONDS``.

Each refusal names the exact fault: which subjectAltName, its type and value
against the type and value expected, and the acmeIdentifier found against the
one expected.
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
# How long a closing connection waits for the peer's close_notify before dropping.
CLOSE_NOTIFY_SECONDS = 1.0
# subjectAltName types as RFC 5280 spells them in GeneralName.
SAN_TYPE_NAMES: dict[type[x509.GeneralName], str] = {
    x509.DNSName: "dNSName",
    x509.IPAddress: "iPAddress",
    x509.RFC822Name: "rfc822Name",
    x509.UniformResourceIdentifier: "uniformResourceIdentifier",
    x509.DirectoryName: "directoryName",
    x509.RegisteredID: "registeredID",
    x509.OtherName: "otherName",
}


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
                str(address),
                self._port,
                ssl=self._context,
                server_hostname=sni,
                ssl_shutdown_timeout=CLOSE_NOTIFY_SECONDS,
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
            writer.close()  # flushes our Finished, sends close_notify; not awaited
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
        raise _incorrect(f"has no subjectAltName extension; expected {_expected(task)}") from exc
    except ValueError as exc:
        raise _incorrect(f"cannot be parsed: {exc}") from exc
    _check_san(sans, task)
    try:
        extension = cert.extensions.get_extension_for_oid(ID_PE_ACME_IDENTIFIER)
    except x509.ExtensionNotFound as exc:
        raise _incorrect(
            f"has no id-pe-acmeIdentifier extension ({ID_PE_ACME_IDENTIFIER.dotted_string})"
        ) from exc
    if not extension.critical:
        raise _incorrect(
            "has an id-pe-acmeIdentifier extension that is not marked critical "
            "(RFC 8737 §3 requires critical)"
        )
    _check_acme_identifier(getattr(extension.value, "value", b""), task.key_authorization)


def _check_san(sans: list[x509.GeneralName], task: ChallengeTask) -> None:
    """Exactly one subjectAltName, of the identifier's type and with its value."""
    expected = _expected(task)
    if len(sans) != 1:
        shown = ", ".join(describe_name(s) for s in sans)
        raise _incorrect(
            f"has {len(sans)} subjectAltNames ({shown}); expected exactly one, {expected}"
        )
    (san,) = sans
    if _names_identifier(san, task):
        return
    fault = "type" if _value_matches(san, task) else "value"
    raise _incorrect(f"has the subjectAltName {describe_name(san)}: wrong {fault}, "
                     f"expected {expected}")


def _check_acme_identifier(value: bytes, key_authorization: str) -> None:
    """The extension must hold OCTET STRING(SHA-256(key authorization)), DER-encoded."""
    wanted = acme_identifier_value(key_authorization)
    if value == wanted:
        return
    if value == wanted[2:]:
        raise _incorrect(
            "has an id-pe-acmeIdentifier holding the bare SHA-256 digest; it must be wrapped "
            f"in a DER OCTET STRING (expected {wanted.hex()})"
        )
    raise _incorrect(
        f"has an id-pe-acmeIdentifier of {value.hex() or 'nothing'}, not this challenge's "
        f"OCTET STRING(SHA-256(key authorization)) {wanted.hex()}"
    )


def describe_name(name: x509.GeneralName) -> str:
    """A GeneralName as RFC 5280 names its type, then its value: ``dNSName host.example``."""
    kind = SAN_TYPE_NAMES.get(type(name), type(name).__name__)
    return f"{kind} {getattr(name, 'value', name)}"


def _expected(task: ChallengeTask) -> str:
    kind = "iPAddress" if task.identifier_type == "ip" else "dNSName"
    return f"{kind} {task.identifier_value}"


def _value_matches(name: x509.GeneralName, task: ChallengeTask) -> bool:
    """True when the SAN's text equals the identifier whatever its type (a type fault)."""
    text = str(getattr(name, "value", "")).rstrip(".").lower()
    return text == task.identifier_value.rstrip(".").lower()


def _names_identifier(name: x509.GeneralName, task: ChallengeTask) -> bool:
    if task.identifier_type == "ip":
        return isinstance(name, x509.IPAddress) and name.value == ipaddress.ip_address(
            task.identifier_value
        )
    expected = task.identifier_value.rstrip(".").lower()
    return isinstance(name, x509.DNSName) and name.value.rstrip(".").lower() == expected


def _incorrect(what: str) -> ChallengeError:
    return ChallengeError(ErrorKind.INCORRECT_RESPONSE, f"the validation certificate {what}")
