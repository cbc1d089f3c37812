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


# What certsrv pages say, by kind. Only "denied" is a refusal by the CA; every
# other kind that is not an answer (the service stopped, an error code, a page
# that says nothing) leaves the request as it was: in flight, to be asked again.
ISSUED, PENDING, DENIED = "issued", "pending", "denied"
ERROR, UNAVAILABLE, NO_DISPOSITION = "error", "unavailable", "none"

_HRESULT = re.compile(r"0x[0-9a-f]{8}", re.IGNORECASE)
# The CA service is stopped or cannot be reached from IIS (RPC errors, 0x8007xxxx).
_SERVICE_DOWN = re.compile(
    r"RPC server is unavailable|has not been started|cannot connect to the certification"
    r"|certification authority service|0x800706ba|0x800706be|0x80070015",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SubmitOutcome:
    """What a certsrv page said: a kind above, the request id when given, the CA's words."""

    kind: str
    request_id: str = ""
    message: str = ""


def classify_message(message: str) -> str:
    """The kind a disposition message stands for."""
    text = message.strip().lower()
    if text in {"", "(none)", "none"}:
        return NO_DISPOSITION
    if "under submission" in text:
        return PENDING
    if text.startswith("denied") or " denied by " in f" {text} " or text.startswith("revoked"):
        return DENIED
    if text.startswith("issued"):
        return ISSUED
    if _SERVICE_DOWN.search(text):
        return UNAVAILABLE
    return ERROR


def parse_submit_page(page: str) -> SubmitOutcome:
    """Classify the page certfnsh.asp answers a submission (or a pending check) with."""
    flat = flatten(html.unescape(page))
    issued = _ISSUED.search(flat)
    if issued:
        return SubmitOutcome(ISSUED, issued.group(1))
    disposition = _DISPOSITION.search(flat) or _DISPOSITION_CELL.search(flat)
    found = _PENDING.search(flat)
    request_id = found.group(1) if found else ""
    if disposition:
        message = disposition.group(1).strip()
        kind = classify_message(message)
        if kind == NO_DISPOSITION and request_id:
            kind = PENDING  # a request id and no verdict: the CA holds it
        if "request was denied" in flat.lower() and kind != UNAVAILABLE:
            kind = DENIED
        return SubmitOutcome(kind, request_id, message)
    if request_id:
        return SubmitOutcome(PENDING, request_id)
    return _error_page(page, flat)


def _error_page(page: str, flat: str) -> SubmitOutcome:
    """A page with neither verdict nor request id: the service is down, or an error code."""
    text = snippet(page)
    if _SERVICE_DOWN.search(flat):
        return SubmitOutcome(UNAVAILABLE, message=text)
    if _HRESULT.search(flat):
        return SubmitOutcome(ERROR, message=text)
    raise CAProtocolError(
        f"certsrv answered a page that is neither issued, pending nor denied: {text!r}"
    )


def parse_disposition(page: str) -> SubmitOutcome:
    """Classify an HTML answer to certnew.cer (there is no certificate, and here is why)."""
    flat = flatten(page)
    match = _DISPOSITION_CELL.search(flat) or _DISPOSITION.search(flat)
    if match:
        message = html.unescape(match.group(1)).strip()
        return SubmitOutcome(classify_message(message), message=message or "(none)")
    if re.search(r"Disposition message:", flat, re.IGNORECASE):
        return SubmitOutcome(NO_DISPOSITION, message="(none)")
    return _error_page(page, flatten(html.unescape(page)))


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
