"""EST bytes on the wire (RFC 7030 §4, RFC 8951): lenient in, exact out.

Requests: base64 with any whitespace, PEM armour, or raw DER, whatever the
Content-Transfer-Encoding says (RFC 8951 §3.2 makes base64 the only encoding;
some clients still send binary), and junk after the data is ignored.

Responses: ``Content-Length`` always (bodies are built whole, never chunked),
``Content-Transfer-Encoding: base64``, and base64 split into lines of a
per-label length (OpenSSL-based clients need short lines; strongSwan 5.9 pki
rejects any whitespace, so it gets one line).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets

from aiohttp import web

from gateway.errors import ErrorKind, GatewayError

PKCS7_CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only"
PKCS7 = "application/pkcs7-mime"
CSRATTRS = "application/csrattrs"
PKCS8 = "application/pkcs8"
PKCS10 = "application/pkcs10"
MAX_BODY = 64 * 1024

_PEM = re.compile(rb"-----BEGIN [A-Z0-9 ]+-----(.*?)(?:-----END [A-Z0-9 ]+-----|$)", re.S)
_B64_RUN = re.compile(rb"^[A-Za-z0-9+/\s]*={0,2}")


def malformed(detail: str) -> GatewayError:
    """A 400 with a one-line reason."""
    return GatewayError(ErrorKind.MALFORMED, detail)


def decode_body(body: bytes) -> bytes:
    """The DER inside a request body: base64 (any layout), PEM, or DER itself."""
    # DER is told apart before any trailing bytes are stripped: its last byte (the end
    # of a signature) is a space, tab, CR, LF or NUL in about one CSR in fifty.
    leading = body.lstrip(b" \t\r\n\0")
    if leading[:1] == b"\x30" and _looks_binary(leading):
        return _first_element(leading)
    stripped = leading.rstrip(b" \t\r\n\0")
    if not stripped:
        raise malformed("the request body is empty; send the base64 DER PKCS#10 request")
    pem = _PEM.search(stripped)
    if pem is not None:
        stripped = pem.group(1)
    run = _B64_RUN.match(stripped)
    text = b"".join((run.group(0) if run else b"").split())
    if not text:
        raise malformed("the request body is neither base64 nor DER")
    if len(text) % 4 == 1:  # a stray character after the data: no base64 ends that way
        text = text[:-1]
    text += b"=" * (-len(text) % 4)  # some clients drop the padding
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise malformed("the request body is not valid base64") from None


def _first_element(der: bytes) -> bytes:
    """The first DER element of ``der`` (the bytes its length header announces).

    Bytes after it are junk the client appended; a header that announces more than
    is there is left for the CSR parser to refuse as truncated.
    """
    if len(der) < 2:
        return der
    if der[1] < 0x80:  # short form: the length itself
        end = 2 + der[1]
    else:  # long form: the number of length bytes that follow
        size = der[1] & 0x7F
        if not 1 <= size <= 4 or len(der) < 2 + size:
            return der
        end = 2 + size + int.from_bytes(der[2:2 + size], "big")
    return der[:end] if end <= len(der) else der


def _looks_binary(data: bytes) -> bool:
    """DER, not base64 text: it has bytes that no base64 text has."""
    return any(b > 0x7E or (b < 0x20 and b not in b"\t\r\n") for b in data[:64])


def b64_lines(der: bytes, line_length: int) -> bytes:
    """Base64 of ``der`` in lines of ``line_length`` (0: one line), CRLF-separated."""
    text = base64.b64encode(der)
    if line_length <= 0:
        return text + b"\r\n"
    step = line_length - line_length % 4 or 4
    return b"".join(text[i:i + step] + b"\r\n" for i in range(0, len(text), step))


def base64_response(der: bytes, content_type: str, line_length: int,
                    status: int = 200) -> web.Response:
    """A base64 body with its exact content type and Content-Transfer-Encoding."""
    return web.Response(status=status, body=b64_lines(der, line_length), headers={
        "Content-Type": content_type, "Content-Transfer-Encoding": "base64"})


def multipart_response(parts: list[tuple[str, bytes]], line_length: int) -> web.Response:
    """multipart/mixed with one base64 part per (content type, DER), in the order given."""
    boundary = "est-" + secrets.token_hex(12)
    body = b""
    for content_type, der in parts:
        body += (f"--{boundary}\r\nContent-Type: {content_type}\r\n"
                 "Content-Transfer-Encoding: base64\r\n\r\n").encode()
        body += b64_lines(der, line_length)
    body += f"--{boundary}--\r\n".encode()
    return web.Response(body=body, headers={
        "Content-Type": f"multipart/mixed; boundary={boundary}"})


def text_response(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    """A one-line text/plain answer (every EST error, and the 202 while pending)."""
    line = " ".join(reason.split()) + "\r\n"
    return web.Response(status=status, body=line.encode(), headers={
        "Content-Type": "text/plain; charset=utf-8", **(headers or {})})


def pending_response(retry_after: int) -> web.Response:
    """202: the request waits for the CA or an approver; re-POST the same CSR later."""
    return text_response(202, f"the request is pending; retry the same request in "
                         f"{retry_after} seconds", {"Retry-After": str(retry_after)})
