"""Reading certsrv's HTML pages.

certsrv has no API; its pages are scraped. They use CRLF line ends and wrap
sentences across lines, so every match works on a whitespace-collapsed copy of
the page. Only the English wording is recognised (certsrv pages are localised;
a localised server shows up as :class:`~connectors.base.CAProtocolError` with a
snippet of the page, which names the problem).
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from connectors.base import CAProtocolError

_ISSUED = re.compile(r"certnew\.cer\?ReqID=(\d+)&", re.IGNORECASE)
_PENDING = re.compile(r"Your Request Id is (\d+)\s*\.", re.IGNORECASE)
_DISPOSITION = re.compile(r'The disposition message is "(.*?)"', re.IGNORECASE | re.DOTALL)
_DISPOSITION_CELL = re.compile(r"Disposition message:\s*(?:<[^>]+>\s*)*([^<]+)", re.IGNORECASE)
_RENEWALS = re.compile(r"var\s+nRenewals\s*=\s*(\d+)\s*;", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")


def flatten(page: str) -> str:
    """The page with every run of whitespace (CRLF, wraps, tabs) collapsed to one space."""
    return re.sub(r"\s+", " ", page)


def snippet(page: str, limit: int = 200) -> str:
    """A short, tag-free excerpt of a page for error messages."""
    text = flatten(html.unescape(_TAGS.sub(" ", page))).strip()
    return text[:limit] + ("..." if len(text) > limit else "")


@dataclass(frozen=True)
class SubmitOutcome:
    """What certfnsh.asp said: issued, pending or denied, with the request id when given."""

    kind: str  # "issued" | "pending" | "denied"
    request_id: str = ""
    message: str = ""


def parse_submit_page(page: str) -> SubmitOutcome:
    """Classify the page certfnsh.asp answers a submission with."""
    flat = flatten(html.unescape(page))
    issued = _ISSUED.search(flat)
    if issued:
        return SubmitOutcome("issued", issued.group(1))
    disposition = _DISPOSITION.search(flat)
    request_id = _PENDING.search(flat)
    if disposition:
        return SubmitOutcome(
            "denied", request_id.group(1) if request_id else "", disposition.group(1).strip()
        )
    if request_id:
        return SubmitOutcome("pending", request_id.group(1))
    raise CAProtocolError(
        f"certsrv answered a page that is neither issued, pending nor denied: {snippet(page)!r}"
    )


def parse_disposition(page: str) -> str:
    """The ``Disposition message:`` of an HTML answer to certnew.cer (why no certificate came)."""
    flat = flatten(page)
    match = _DISPOSITION_CELL.search(flat)
    if match and match.group(1).strip():
        return html.unescape(match.group(1)).strip()
    quoted = _DISPOSITION.search(flat)
    if quoted:
        return html.unescape(quoted.group(1)).strip()
    raise CAProtocolError(
        f"certsrv answered an HTML page without a disposition message: {snippet(page)!r}"
    )


def is_under_submission(disposition: str) -> bool:
    """True when a disposition says the request still waits for an officer."""
    return "under submission" in disposition.lower()


def parse_renewals(page: str) -> int:
    """``nRenewals`` from certcarc.asp: the index of the CA's current certificate."""
    match = _RENEWALS.search(page)
    if not match:
        raise CAProtocolError(f"certcarc.asp has no 'var nRenewals=N;': {snippet(page)!r}")
    return int(match.group(1))


def _b64_body(data: bytes) -> bytes:
    text = data.decode("ascii", "replace")
    body = re.sub(r"-----(BEGIN|END) [A-Z0-9 ]+-----", "", text)
    try:
        return base64.b64decode(re.sub(r"\s+", "", body), validate=True)
    except ValueError as exc:
        raise CAProtocolError(f"certsrv sent a certificate that is not base64: {exc}") from exc


def parse_cert(data: bytes) -> bytes:
    """DER of a certnew.cer answer (PEM with CRLF, or DER)."""
    der = data if data[:1] == b"\x30" else _b64_body(data)
    try:
        return x509.load_der_x509_certificate(der).public_bytes(Encoding.DER)
    except ValueError as exc:
        raise CAProtocolError(f"certsrv sent a certificate that does not parse: {exc}") from exc


def parse_p7b(data: bytes) -> list[bytes]:
    """DER certificates of a certnew.p7b answer (b64 labelled CERTIFICATE, or DER)."""
    der = data if data[:1] == b"\x30" else _b64_body(data)
    try:
        certs = pkcs7.load_der_pkcs7_certificates(der)
    except ValueError as exc:
        raise CAProtocolError(f"certsrv sent a PKCS#7 chain that does not parse: {exc}") from exc
    return [c.public_bytes(Encoding.DER) for c in certs]
