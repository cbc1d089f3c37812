"""Bytes on the wire, seen through a raw TLS socket: headers, Connection: close, tls-unique PoP."""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from urllib.parse import urlsplit

from tests.est.support import PASSWORD, Gateway, b64, certs_of, ec_key, make_csr

AUTH = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
TITLE_CASE = re.compile(r"^(WWW|[A-Z][a-z0-9]*)(-[A-Z][a-z0-9]*)*$")


async def _connect(gw: Gateway, tls12: bool = False
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    url = urlsplit(gw.url)
    return await asyncio.open_connection(url.hostname, url.port,
                                         ssl=gw.client_context(tls12=tls12))


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str,
                    body: bytes = b"", method: str = "POST", extra: bytes = b""
                    ) -> tuple[int, list[tuple[str, str]], bytes]:
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {AUTH}\r\nContent-Type: application/pkcs10\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    writer.write(head + body + extra)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)  # EOF: the server closed as asked
    writer.close()
    header_block, _, payload = raw.partition(b"\r\n\r\n")
    lines = header_block.decode().split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in lines[1:]]
    return int(lines[0].split()[1]), headers, payload  # type: ignore[return-value]


async def test_headers_are_title_case_small_with_length_and_connection_closed(
        gw: Gateway) -> None:
    reader, writer = await _connect(gw)
    path = "/.well-known/est/basic/simpleenroll"
    status, headers, payload = await _exchange(reader, writer, path, b64(make_csr(ec_key())),
                                               extra=b"\r\n\r\n")  # not in Content-Length
    assert status == 200
    names = [name for name, _ in headers]
    assert all(TITLE_CASE.match(n) for n in names), names
    values = dict(headers)
    assert int(values["Content-Length"]) == len(payload)
    assert "Transfer-Encoding" not in values and "Server" not in values
    assert values["Connection"] == "close"
    assert sum(len(n) + len(v) + 4 for n, v in headers) < 1024
    assert certs_of(payload)
    # No User-Agent, as strongSwan pki 5.9 sends: one unbroken base64 line.
    assert payload.count(b"\r\n") == 1


async def _pop_csr(writer: asyncio.StreamWriter) -> bytes:
    tls: ssl.SSLObject = writer.get_extra_info("ssl_object")
    binding = tls.get_channel_binding("tls-unique")
    assert binding is not None
    return b64(make_csr(ec_key(), challenge_password=base64.b64encode(binding).decode()))


async def test_proof_of_possession_with_tls_unique(gw: Gateway) -> None:
    path = "/.well-known/est/pop/simpleenroll"
    reader, writer = await _connect(gw, tls12=True)
    status, _, payload = await _exchange(reader, writer, path, await _pop_csr(writer))
    assert status == 200, payload
    # The binding of another connection does not prove anything here.
    other_reader, other_writer = await _connect(gw, tls12=True)
    stolen = await _pop_csr(other_writer)
    other_writer.close()
    reader, writer = await _connect(gw, tls12=True)
    status, _, payload = await _exchange(reader, writer, path, stolen)
    assert status == 400 and b"proof of possession failed" in payload
    reader, writer = await _connect(gw, tls12=True)
    status, _, payload = await _exchange(reader, writer, path, b64(make_csr(ec_key())))
    assert status == 400 and b"challengePassword" in payload


async def test_proof_of_possession_over_tls13_is_explained(gw: Gateway) -> None:
    reader, writer = await _connect(gw)
    status, _, payload = await _exchange(reader, writer, "/.well-known/est/pop/simpleenroll",
                                         b64(make_csr(ec_key())))
    assert status == 400 and b"TLS 1.2" in payload
