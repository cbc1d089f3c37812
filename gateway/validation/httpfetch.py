"""A bounded HTTP/1.1 GET over one connection to one checked address.

Why not aiohttp's client: HTTP-01 needs one GET per hop, to an address the
network guard has already checked, and never more than a few kilobytes back.
Measured under a burst of a thousand validations (loadtest/validation_burst.py)
aiohttp's general-purpose client cost more than twice the CPU of this
protocol, CPU taken from the ACME handlers sharing the loop. This reader keeps
only what the challenge needs: ``Connection: close``, status and headers up to
``HEAD_LIMIT`` bytes, a body framed by Content-Length, chunked coding or close,
and a hard stop as soon as the body passes its limit.

A complete response ends the connection politely (FIN; over TLS a close_notify
first, not waiting longer than ``CLOSE_NOTIFY_SECONDS`` for the peer's), so
servers do not log a reset; only a failed or oversized response is cut off.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass, field

HEAD_LIMIT = 16 * 1024
MAX_HEADERS = 100
# Statuses after which the body does not matter to us: we stop reading at the head.
HEAD_ONLY = frozenset({204, 301, 302, 303, 304, 307, 308})
_STATUS_LINE = re.compile(rb"^HTTP/1\.[01] ([1-9]\d\d)(?: [^\r\n]*)?$")
# The token characters a header name is made of (RFC 9110 §5.6.2): a name is valid when
# deleting them leaves nothing, a test run in C (a regular expression cost 1 µs a header).
_TOKEN_CHARS = b"!#$%&'*+.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-"
_CHUNK_SIZE = re.compile(rb"^([0-9A-Fa-f]{1,8})(?:;[^\r\n]*)?$")
CLOSE_NOTIFY_SECONDS = 1.0


class MalformedResponse(Exception):
    """The peer's bytes are not an HTTP/1.1 response we can read."""


class ConnectFailed(Exception):
    """No connection (refused, unreachable, reset during set-up); the message says why."""


class IncompleteResponse(Exception):
    """The connection ended before the response did."""


@dataclass
class Response:
    """Status, headers (names lower-cased) and the body read (at most the limit)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    too_big: bool = False


def request_bytes(host_header: str, target: str, user_agent: str) -> bytes:
    """The GET request; ``target`` and ``host_header`` must be printable ASCII without spaces."""
    if not _printable(target) or not _printable(host_header):
        raise ValueError("request target and Host must be printable ASCII without spaces")
    return (
        f"GET {target} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {user_agent}\r\n"
        "Accept: */*\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


def _printable(text: str) -> bool:
    # ASCII, printable (0x20-0x7E) and without the space: 0x21-0x7E, tested in C.
    return bool(text) and text.isascii() and text.isprintable() and " " not in text


async def fetch(
    address: str,
    port: int,
    request: bytes,
    body_limit: int,
    tls: ssl.SSLContext | None = None,
    server_name: str | None = None,
) -> Response:
    """Send ``request`` to ``address``:``port`` and read the response within the bounds."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Response] = loop.create_future()
    try:
        transport, _ = await loop.create_connection(
            lambda: _Reader(request, body_limit, done),
            address,
            port,
            ssl=tls,
            server_hostname=server_name if tls else None,
            ssl_shutdown_timeout=CLOSE_NOTIFY_SECONDS if tls else None,
        )
    except ssl.SSLError:
        raise
    except OSError as exc:
        raise ConnectFailed(exc.strerror or str(exc) or type(exc).__name__) from exc
    try:
        response = await done
    except BaseException:
        transport.abort()
        raise
    if response.too_big:
        transport.abort()  # never drain what is left of an endless body
    else:
        transport.close()
    return response


class _Reader(asyncio.Protocol):
    def __init__(self, request: bytes, body_limit: int, done: asyncio.Future[Response]) -> None:
        self.request = request
        self.body_limit = body_limit
        self.done = done
        self.buffer = bytearray()
        self.response: Response | None = None
        self.framing: tuple[str, int] = ("close", 0)
        self.body_start = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        self.buffer += data
        try:
            self._progress(eof=False)
        except (MalformedResponse, IncompleteResponse) as exc:
            self.done.set_exception(exc)

    def eof_received(self) -> bool | None:
        self._finish_at_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and not self.done.done():
            self.done.set_exception(exc)
        self._finish_at_eof()

    def _finish_at_eof(self) -> None:
        if self.done.done():
            return
        try:
            self._progress(eof=True)
            if not self.done.done():
                raise IncompleteResponse("the connection closed before the response was complete")
        except (MalformedResponse, IncompleteResponse) as exc:
            self.done.set_exception(exc)

    def _progress(self, eof: bool) -> None:
        if self.response is None and not self._read_head():
            return
        response = self.response
        assert response is not None
        if response.status in HEAD_ONLY:
            self.done.set_result(response)
            return
        body = memoryview(self.buffer)[self.body_start :]
        kind, length = self.framing
        if kind == "length":
            self._body_by_length(response, body, length)
        elif kind == "chunked":
            self._body_chunked(response, bytes(body), eof)
        else:
            self._body_until_close(response, body, eof)

    def _read_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > HEAD_LIMIT:
                raise MalformedResponse(f"response headers are larger than {HEAD_LIMIT} bytes")
            return False
        if end > HEAD_LIMIT:
            raise MalformedResponse(f"response headers are larger than {HEAD_LIMIT} bytes")
        self.response, self.framing = parse_head(bytes(self.buffer[:end]))
        self.body_start = end + 4
        return True

    def _body_by_length(self, response: Response, body: memoryview, length: int) -> None:
        if length > self.body_limit or len(body) > self.body_limit:
            response.too_big = True
            self.done.set_result(response)
        elif len(body) >= length:
            response.body = bytes(body[:length])
            self.done.set_result(response)

    def _body_chunked(self, response: Response, raw: bytes, eof: bool) -> None:
        decoded, complete = dechunk(raw, self.body_limit)
        if decoded is None or len(raw) > 2 * self.body_limit + HEAD_LIMIT:
            response.too_big = True
            self.done.set_result(response)
        elif complete:
            response.body = decoded
            self.done.set_result(response)

    def _body_until_close(self, response: Response, body: memoryview, eof: bool) -> None:
        if len(body) > self.body_limit:
            response.too_big = True
            self.done.set_result(response)
        elif eof:
            response.body = bytes(body)
            self.done.set_result(response)


def parse_head(head: bytes) -> tuple[Response, tuple[str, int]]:
    """Parse the status line and headers; also return the body framing (kind, length)."""
    lines = head.split(b"\r\n")
    match = _STATUS_LINE.match(lines[0])
    if not match:
        raise MalformedResponse(f"not an HTTP/1.x status line: {lines[0][:60]!r}")
    if len(lines) - 1 > MAX_HEADERS:
        raise MalformedResponse(f"more than {MAX_HEADERS} response headers")
    response = Response(status=int(match.group(1)))
    lengths: set[str] = set()
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name.translate(None, _TOKEN_CHARS):
            raise MalformedResponse(f"malformed header line {line[:60]!r}")
        key, text = name.decode("ascii").lower(), value.strip().decode("latin-1")
        if key == "content-length":
            lengths.add(text)
        response.headers[key] = text
    return response, _framing(response, lengths)


def _framing(response: Response, lengths: set[str]) -> tuple[str, int]:
    if response.status < 200:
        raise MalformedResponse(f"unexpected informational status {response.status}")
    coding = response.headers.get("transfer-encoding", "").lower()
    if coding:
        if coding.split(",")[-1].strip() != "chunked":
            raise MalformedResponse(f"unsupported Transfer-Encoding {coding!r}")
        return ("chunked", 0)
    if len(lengths) > 1 or (lengths and not next(iter(lengths)).isdigit()):
        raise MalformedResponse(f"invalid Content-Length {sorted(lengths)}")
    if lengths:
        return ("length", int(next(iter(lengths))))
    return ("close", 0)


def dechunk(raw: bytes, limit: int) -> tuple[bytes | None, bool]:
    """Decode chunked data so far: (body, complete); body None once it passes ``limit``."""
    body = bytearray()
    position = 0
    while True:
        line_end = raw.find(b"\r\n", position)
        if line_end < 0:
            return bytes(body), False
        match = _CHUNK_SIZE.match(raw[position:line_end])
        if not match:
            raise MalformedResponse("malformed chunk size line")
        size = int(match.group(1), 16)
        if size == 0:
            return bytes(body), True  # trailers, if any, do not matter
        start = line_end + 2
        body += raw[start : start + size]
        if len(body) > limit:
            return None, False
        if len(raw) < start + size + 2:
            return bytes(body), False
        if raw[start + size : start + size + 2] != b"\r\n":
            raise MalformedResponse("chunk data not followed by CRLF")
        position = start + size + 2
