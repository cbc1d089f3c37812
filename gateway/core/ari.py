"""ACME Renewal Information (RFC 9773): certificate identifiers and renewal windows.

A certID is ``base64url(AKI keyIdentifier) "." base64url(serial)``, the serial as
the content octets of its DER INTEGER (a leading zero byte when the high bit is
set), both without padding (RFC 9773 §4.1).

The window a certificate's profile suggests is a span of its validity period
(``renewal_window_start`` … ``renewal_window_end``). Each certificate is given one
half of that span, placed by a hash of its serial: certificates issued together
(a fleet enrolled in one afternoon) then come back spread over the whole span
instead of all at its start, and each client still picks its own moment inside
its half (RFC 9773 §4.2).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from gateway.errors import ErrorKind, GatewayError

# How far back a window "in the past" reaches: the end is the moment of the advice.
PAST_WINDOW = timedelta(hours=1)
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class CertId:
    """A parsed certID: the issuer's key identifier and the serial number."""

    key_id: bytes
    serial: int

    @property
    def serial_hex(self) -> str:
        """The serial as stored (lower-case hex, no leading zeros)."""
        return format(self.serial, "x")

    @property
    def text(self) -> str:
        """The canonical certID text (how orders record ``replaces``)."""
        return f"{_b64(self.key_id)}.{_b64(serial_octets(self.serial))}"


@dataclass(frozen=True)
class Window:
    """A suggested renewal window (RFC 9773 §4.2) and, when moved, why."""

    start: datetime
    end: datetime
    explanation_url: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not _B64URL.fullmatch(text):
        raise binascii.Error("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def serial_octets(serial: int) -> bytes:
    """The content octets of a positive serial's DER INTEGER."""
    return serial.to_bytes(serial.bit_length() // 8 + 1, "big")


def cert_id(leaf: x509.Certificate) -> str | None:
    """The certID of a certificate; None when it has no authority key identifier."""
    key_id = issuer_key_id(leaf)
    return None if key_id is None else CertId(key_id, leaf.serial_number).text


def parse_cert_id(text: str) -> CertId:
    """A certID as a client sent it; malformed when it is not one."""
    key_part, dot, serial_part = text.partition(".")
    try:
        if not dot or not key_part or not serial_part:
            raise binascii.Error("two parts")
        key_id, serial = _unb64(key_part), _unb64(serial_part)
    except binascii.Error:
        raise GatewayError(ErrorKind.MALFORMED,
                           "a certID is base64url(authority key identifier) \".\" "
                           "base64url(serial number), without padding (RFC 9773 §4.1)") from None
    if serial[0] & 0x80 or (len(serial) > 1 and serial[0] == 0 and not serial[1] & 0x80):
        raise GatewayError(ErrorKind.MALFORMED,
                           "the certID's serial is not a positive DER INTEGER's content octets")
    return CertId(key_id, int.from_bytes(serial, "big"))


def issuer_key_id(leaf: x509.Certificate) -> bytes | None:
    """The authority key identifier of a certificate, if it has one."""
    try:
        return leaf.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def scheduled_window(not_before: datetime, not_after: datetime, serial: str,
                     start_fraction: float, end_fraction: float) -> Window:
    """The profile's window for one certificate: its half of the span, placed by serial."""
    validity = not_after - not_before
    span_start = not_before + validity * start_fraction
    half = (validity * end_fraction - validity * start_fraction) / 2
    digest = hashlib.sha256(serial.encode("ascii")).digest()
    place = int.from_bytes(digest[:8], "big") / 2**64
    start = span_start + half * place
    return Window(start=start, end=start + half)


def past_window(at: datetime, explanation_url: str = "") -> Window:
    """A window that has already closed at ``at``: renew now (RFC 9773 §4.2)."""
    return Window(start=at - PAST_WINDOW, end=at, explanation_url=explanation_url)
