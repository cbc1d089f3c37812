"""Challenge answers served on loopback so that validation by the server under test is real.

* :class:`Http01Responder`: a small HTTP server answering
  ``/.well-known/acme-challenge/<token>`` with the key authorization.
* :class:`DnsResponder`: a small UDP DNS server answering
  ``TXT _acme-challenge.<name>`` with the DNS-01 digest, and ``A`` for every
  name with 127.0.0.1 so that HTTP-01 names resolve to the responder above.
  The server under test must use it as its resolver (Pebble:
  ``-dnsserver 127.0.0.1:PORT``; the gateway: ``validation.resolvers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import Counter
from http import HTTPStatus
from typing import cast

LOOPBACK = "127.0.0.1"
LOOPBACK_RDATA = socket.inet_aton(LOOPBACK)
TYPE_A, TYPE_TXT, CLASS_IN = 1, 16, 1
_TYPE_NAMES = {28: "AAAA", 257: "CAA", 5: "CNAME"}
NAME_POINTER = 0xC00C  # the question's name, which starts right after the 12-byte header
QR_FLAG, AA_FLAG = 0x8000, 0x0400
OPCODE_AND_RD = 0x7900  # the header bits an answer copies from its query (RFC 1035 §4.1.1)
OPCODE_QUERY = 0
DNS_RECEIVE_BUFFER = 4 * 1024 * 1024  # capped by net.core.rmem_max


def _txt_rdata(value: str) -> bytes:
    """TXT rdata: the value as character-strings of at most 255 bytes (RFC 1035 §3.3.14)."""
    raw = value.encode("ascii")
    return b"".join(bytes([len(raw[i:i + 255])]) + raw[i:i + 255]
                    for i in range(0, max(len(raw), 1), 255))


def _read_query(data: bytes) -> tuple[int, int, str, int, bytes] | None:
    """(id, flags, lower-case absolute name, qtype, raw question) of a one-question query.

    None for anything else: a response, another opcode, several questions, a
    compressed or truncated name (queries carry none), a class other than IN.
    """
    if len(data) < 12:
        return None
    qid, flags, qdcount = struct.unpack_from("!3H", data)
    if flags & QR_FLAG or (flags >> 11) & 0xF != OPCODE_QUERY or qdcount != 1:
        return None
    labels: list[str] = []
    pos = 12
    while True:
        if pos >= len(data):
            return None
        length = data[pos]
        pos += 1
        if length == 0:
            break
        if length > 63 or pos + length > len(data):
            return None  # a pointer or an extended label type: not in a query
        try:
            labels.append(data[pos:pos + length].decode("ascii"))
        except UnicodeDecodeError:
            return None
        pos += length
    if pos + 4 > len(data):
        return None
    qtype, qclass = struct.unpack_from("!2H", data, pos)
    if qclass != CLASS_IN:
        return None
    name = ".".join(labels).lower() + "."
    return qid, flags, name, qtype, data[12:pos + 4]


CHALLENGE_PATH = "/.well-known/acme-challenge/"
MAX_REQUEST_HEAD = 8192
# Hundreds of validators connect at once while the loop may be busy polling.
HTTP01_BACKLOG = 4096


class _Http01Protocol(asyncio.Protocol):
    """One validator connection: read the request head, answer once, close.

    A bare protocol rather than an aiohttp application: every validation opens
    a new connection, and aiohttp's per-connection and per-request machinery
    was ~6 % of the load generator's CPU.
    """

    def __init__(self, owner: Http01Responder) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.answered = False  # a (delayed) answer is on its way: more bytes are ignored

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self.answered:
            return
        self.head += data
        if b"\r\n\r\n" not in self.head:
            if len(self.head) > MAX_REQUEST_HEAD:
                self._reply(431, "request head too large")
            return
        self.answered = True
        answer = self.owner.respond(self.head.split(b"\r\n", 1)[0])
        if self.owner.delay > 0:  # a slow web server: the validator waits on an open connection
            asyncio.get_running_loop().call_later(self.owner.delay, self._reply, *answer)
        else:
            self._reply(*answer)

    def _reply(self, status: int, body: str) -> None:
        if self.transport is None or self.transport.is_closing():
            return  # the validator gave up (or a delayed answer outlived the connection)
        payload = body.encode()
        kind = "application/octet-stream" if status == 200 else "text/plain"
        self.transport.write(
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload
        )
        self.transport.close()
        self.transport = None


class Http01Responder:
    """Serves key authorizations by token on 127.0.0.1:``port`` (one request per connection).

    With ``delay`` (seconds) each answer is sent that long after its request
    arrived, as a slow origin server would: validations then stay in flight
    while clients poll.
    """

    def __init__(self, port: int, delay: float = 0.0) -> None:
        self.port = port
        self.delay = delay
        self.tokens: dict[str, str] = {}
        self.hits: Counter[str] = Counter()
        self._server: asyncio.AbstractServer | None = None

    def respond(self, request_line: bytes) -> tuple[int, str]:
        """(status, body) for one request line such as ``GET /.well-known/... HTTP/1.1``."""
        parts = request_line.decode("latin-1").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return 400, "bad request line"
        method, target, _ = parts
        if method != "GET":
            return 405, "only GET"
        token = target.removeprefix(CHALLENGE_PATH) if target.startswith(CHALLENGE_PATH) else ""
        answer = self.tokens.get(token) if token and "/" not in token else None
        self.hits["found" if answer else "missing"] += 1
        if answer is None:
            return 404, "unknown token"
        return 200, answer

    async def start(self) -> None:
        """Start listening; raises OSError when the port is taken."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Http01Protocol(self), LOOPBACK, self.port, reuse_address=True,
            backlog=HTTP01_BACKLOG,
        )

    async def stop(self) -> None:
        """Stop listening."""
        if self._server:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


class _DnsProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: DnsResponder) -> None:
        self.owner = owner
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport does not subclass asyncio.DatagramTransport, hence the cast.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.owner.answer(data)
        if reply is None:  # garbage on the socket is dropped, as resolvers do
            self.owner.queries["malformed"] += 1
        elif self.transport:
            self.transport.sendto(reply, addr)


class DnsResponder:
    """Answers TXT for published DNS-01 names and A 127.0.0.1 for every name, over UDP.

    Queries are read and answers written at the wire level (RFC 1035 §4.1):
    the load generator answers two or three questions per order, and building
    dnspython messages for them cost ~9 % of its CPU, taken from the server
    under test on a shared machine.
    """

    def __init__(self, port: int, address: str = LOOPBACK) -> None:
        self.port = port
        self.address = address
        # Lower-case absolute names ("_acme-challenge.x.test.") → TXT rdata, built at publish
        # time so that an answer is only concatenation.
        self.txt: dict[str, list[bytes]] = {}
        self.queries: Counter[str] = Counter()
        self._transport: asyncio.DatagramTransport | None = None

    def publish(self, name: str, value: str) -> None:
        """Add a TXT value at ``_acme-challenge.<name>``."""
        self.txt.setdefault(self._key(name), []).append(_txt_rdata(value))

    def withdraw(self, name: str, value: str) -> None:
        """Remove one TXT value at ``_acme-challenge.<name>`` (a wildcard may share the name)."""
        key = self._key(name)
        record = _txt_rdata(value)
        remaining = [r for r in self.txt.get(key, []) if r != record]
        if remaining:
            self.txt[key] = remaining
        else:
            self.txt.pop(key, None)

    @staticmethod
    def _key(name: str) -> str:
        return f"_acme-challenge.{name.removeprefix('*.')}.".lower()

    def answer(self, query: bytes) -> bytes | None:
        """The wire response to one wire query; None when the query cannot be read.

        Authoritative, the question echoed byte for byte (so a resolver's
        mixed-case name still matches), an empty NOERROR when nothing matches.
        """
        parsed = _read_query(query)
        if parsed is None:
            return None
        qid, flags, name, qtype, question = parsed
        if qtype == TYPE_TXT:
            self.queries["TXT"] += 1
            rdatas = self.txt.get(name, [])
        elif qtype == TYPE_A:
            self.queries["A"] += 1
            rdatas = [] if name.startswith("_acme-challenge.") else [LOOPBACK_RDATA]
        else:
            self.queries[_TYPE_NAMES.get(qtype, str(qtype))] += 1
            rdatas = []
        answer_flags = QR_FLAG | AA_FLAG | (flags & OPCODE_AND_RD)
        header = struct.pack("!6H", qid, answer_flags, 1, len(rdatas), 0, 0)
        records = b"".join(
            struct.pack("!HHHIH", NAME_POINTER, qtype, CLASS_IN, 0, len(r)) + r for r in rdatas
        )
        return header + question + records

    async def start(self) -> None:
        """Bind the UDP socket; raises OSError when the port is taken."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _DnsProtocol(self), local_addr=(self.address, self.port)
        )
        # Hundreds of validations start at once and each asks several questions; with
        # the default buffer (~200 KB, ~270 queries) the kernel drops the rest while this
        # loop is busy, and a validator that does not retry (Pebble) fails the challenge.
        sock = transport.get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, DNS_RECEIVE_BUFFER)
        self._transport = transport

    async def stop(self) -> None:
        """Close the socket."""
        if self._transport:
            self._transport.close()
            self._transport = None
