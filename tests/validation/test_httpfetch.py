"""The bounded HTTP/1.1 reader: framing, limits and malformed peers, through raw responders."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.errors import ErrorKind
from gateway.validation.httpfetch import (
    MalformedResponse,
    dechunk,
    fetch,
    parse_head,
    request_bytes,
)
from tests.validation.conftest import MakeVA
from tests.validation.dnsserver import DnsResponder
from tests.validation.test_http01 import KEY_AUTH, assert_failed, task
from tests.validation.test_tlsalpn01 import dns_san, make_cert
from tests.validation.tlspeer import tls_peer


@contextlib.asynccontextmanager
async def raw_server(
    reply: bytes,
    tls: ssl.SSLContext | None = None,
    requests: list[bytes] | None = None,
    wait_for_request: bool = True,
) -> AsyncIterator[int]:
    """A listener that reads one request head and answers ``reply`` verbatim, then closes."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            if wait_for_request:
                head = await reader.readuntil(b"\r\n\r\n")
                if requests is not None:
                    requests.append(head)
            writer.write(reply)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def chunked(*chunks: bytes) -> bytes:
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + encoded + b"0\r\n\r\n"


@pytest.mark.parametrize(
    "reply",
    [
        ok(KEY_AUTH.encode()),
        ok(KEY_AUTH.encode() + b"\n", b"Content-Type: text/plain\r\n"),
        chunked(KEY_AUTH[:5].encode(), KEY_AUTH[5:].encode()),
        b"HTTP/1.0 200 OK\r\n\r\n" + KEY_AUTH.encode(),  # framed by close
        ok(KEY_AUTH.encode()) + b"trailing junk after the body",
    ],
)
async def test_framings_are_read(dns_server: DnsResponder, make_va: MakeVA, reply: bytes) -> None:
    dns_server.zone.add("web.test", "A", "127.0.0.1")
    async with raw_server(reply) as port:
        va = await make_va(http01_port=port)
        outcome = await va.validate(task())
    assert outcome.valid, outcome.failure


@pytest.mark.parametrize(
    ("reply", "kind", "words"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", ErrorKind.CONNECTION, ("not an HTTP/1.x status line",)),
        (b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", ErrorKind.CONNECTION, ("malformed header",)),
        (
            b"HTTP/1.1 200 OK\r\n" + b"X: " + b"a" * 20000,
            ErrorKind.CONNECTION,
            ("headers are larger",),
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            ErrorKind.CONNECTION,
            ("Content-Length",),
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            ErrorKind.CONNECTION,
            ("Content-Length",),
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            ErrorKind.CONNECTION,
            ("Transfer-Encoding",),
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            ErrorKind.CONNECTION,
            ("chunk size",),
        ),
        (b"HTTP/1.1 100 Continue\r\n\r\n", ErrorKind.CONNECTION, ("informational",)),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nshort",
            ErrorKind.CONNECTION,
            ("closed before",),
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Le", ErrorKind.CONNECTION, ("closed before",)),
        (b"", ErrorKind.CONNECTION, ("closed before",)),
        (
            chunked(b"x" * 700, b"y" * 700),
            ErrorKind.INCORRECT_RESPONSE,
            ("larger than 1024 bytes",),
        ),
        (
            b"HTTP/1.0 200 OK\r\n\r\n" + b"z" * 3000,
            ErrorKind.INCORRECT_RESPONSE,
            ("larger than 1024",),
        ),
    ],
)
async def test_bad_responses(
    dns_server: DnsResponder, make_va: MakeVA, reply: bytes, kind: ErrorKind, words: tuple[str, ...]
) -> None:
    dns_server.zone.add("web.test", "A", "127.0.0.1")
    async with raw_server(reply) as port:
        va = await make_va(http01_port=port, max_body_bytes=1024)
        outcome = await va.validate(task())
    assert_failed(outcome, kind, *words)


async def test_truncated_response_is_retried(dns_server: DnsResponder, make_va: MakeVA) -> None:
    dns_server.zone.add("web.test", "A", "127.0.0.1")

    async def no_wait(seconds: float) -> None:
        return None

    async with raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nab") as port:
        va = await make_va(http01_port=port, attempts=2, sleep=no_wait)
        outcome = await va.validate(task())
    assert_failed(outcome, ErrorKind.CONNECTION, "after 2 attempts")


async def test_request_is_minimal_and_names_the_host(
    dns_server: DnsResponder, make_va: MakeVA
) -> None:
    dns_server.zone.add("web.test", "A", "127.0.0.1")
    requests: list[bytes] = []
    async with raw_server(ok(KEY_AUTH.encode()), requests=requests) as port:
        va = await make_va(http01_port=port)
        await va.validate(task())
    (head,) = requests
    lines = head.decode().split("\r\n")
    assert lines[0] == "GET /.well-known/acme-challenge/tok-EN_123 HTTP/1.1"
    assert f"Host: web.test:{port}" in lines
    assert "Connection: close" in lines


async def test_https_redirect_uses_sni_and_any_certificate(
    tmp_path: Path, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    cert, key = make_cert(tmp_path, [dns_san("unrelated.test")])  # not the name: must not matter
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda obj, name, ctx: names.append(name)  # type: ignore[assignment,misc,func-returns-value]
    dns_server.zone.add("web.test", "A", "127.0.0.1")
    dns_server.zone.add("secure.test", "A", "127.0.0.1")
    async with raw_server(ok(KEY_AUTH.encode()), tls=context) as tls_port:
        redirect = b"HTTP/1.1 301 Moved\r\nLocation: https://secure.test:%d/ok\r\n\r\n" % tls_port
        async with raw_server(redirect) as port:
            va = await make_va(http01_port=port, http01_redirect_ports=(tls_port,))
            outcome = await va.validate(task())
    assert outcome.valid, outcome.failure
    assert names == ["secure.test"]
    assert outcome.records[1]["url"] == f"https://secure.test:{tls_port}/ok"


async def test_https_redirect_to_plain_listener_is_a_tls_failure(
    dns_server: DnsResponder, make_va: MakeVA
) -> None:
    dns_server.zone.add("web.test", "A", "127.0.0.1")
    async with raw_server(b"HTTP/1.1 400 Bad\r\n\r\n", wait_for_request=False) as plain:
        redirect = b"HTTP/1.1 302 Found\r\nLocation: https://web.test:%d/\r\n\r\n" % plain
        async with raw_server(redirect) as port:
            va = await make_va(http01_port=port, http01_redirect_ports=(plain,))
            outcome = await va.validate(task())
    assert_failed(outcome, ErrorKind.TLS, "TLS with 127.0.0.1")


def test_parse_head_lowercases_names_and_detects_framing() -> None:
    response, framing = parse_head(b"HTTP/1.1 302 Found\r\nLOCATION: /x\r\nContent-Length: 0")
    assert response.status == 302 and response.headers == {"location": "/x", "content-length": "0"}
    assert framing == ("length", 0)
    with pytest.raises(MalformedResponse):
        parse_head(b"HTTP/2 200")


@pytest.mark.parametrize(
    "name", [b"", b"Bad Name", b"X\n", b"X\tY", b"Caf\xc3\xa9", b"(x)", b"a/b", b"a@b", b'a"b']
)
def test_header_names_must_be_tokens(name: bytes) -> None:
    with pytest.raises(MalformedResponse, match="malformed header"):
        parse_head(b"HTTP/1.1 200 OK\r\n" + name + b": v")


def test_every_token_character_makes_a_header_name() -> None:
    name = b"!#$%&'*+.^_`|~09azAZ-"
    response, _ = parse_head(b"HTTP/1.1 200 OK\r\n" + name + b": v")
    assert response.headers == {name.decode().lower(): "v"}


@pytest.mark.parametrize(
    ("raw", "limit", "expected"),
    [
        (b"3\r\nabc\r\n0\r\n\r\n", 10, (b"abc", True)),
        (b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n", 10, (b"abcde", True)),
        (b"3\r\nab", 10, (b"ab", False)),
        (b"5\r\nabcde\r\n", 4, (None, False)),
        (b"", 10, (b"", False)),
    ],
)
def test_dechunk(raw: bytes, limit: int, expected: tuple[bytes | None, bool]) -> None:
    assert dechunk(raw, limit) == expected


@pytest.mark.parametrize(
    "host, target",
    [
        ("web.test", "/a\r\nX: y"),
        ("web.test", "/a b"),
        ("web.test", "/\x7f"),
        ("web.test", "/caf\u00e9"),
        ("web.test", ""),
        ("web test", "/"),
        ("web.test\t", "/"),
    ],
)
def test_request_bytes_refuses_what_is_not_printable_ascii(host: str, target: str) -> None:
    with pytest.raises(ValueError):
        request_bytes(host, target, "ua")


def test_request_bytes_takes_every_visible_ascii_character() -> None:
    visible = "".join(chr(c) for c in range(0x21, 0x7F))
    assert visible.encode() in request_bytes("web.test", "/" + visible, "ua")


async def test_https_response_is_followed_by_close_notify(tmp_path: Path) -> None:
    """A complete response over TLS ends with a TLS close, which servers log as clean."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    body = KEY_AUTH.encode()
    with tls_peer(make_cert(tmp_path, [dns_san()]), ["http/1.1"], ok(body)) as peer:
        response = await fetch("127.0.0.1", peer.port, request_bytes("a.test", "/", "t"),
                               1024, context, "a.test")
        ending = await asyncio.to_thread(peer.ending)

    assert response.body == body
    assert ending == "close_notify"
