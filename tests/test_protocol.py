"""Slow and greedy clients against a served gateway (``python -m gateway serve``), on raw sockets.

Each phase of a request has its deadline (gateway.protocol) and each client
address its connection budget (gateway.connections): a connection that misses a
deadline or exceeds a budget is closed within the configured time and counted
in /metrics, while a normal request keeps being answered. These tests also pin
the aiohttp internals the watchdog relies on: an upgrade that moves them fails here.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.est.passwords import hash_password
from tests.e2e.harness import free_port, to_toml

HEADER, BODY, IDLE, HANDSHAKE = 1.0, 1.0, 1.5, 1.0
PER_ADDRESS, TOTAL = 4, 12
# Scheduling noise on a loaded machine: a deadline may be met this much late.
SLACK = 1.5


@dataclass
class Served:
    """The gateway process, its ports and its log."""

    http_port: int
    https_port: int
    log: Path
    process: subprocess.Popen[bytes]

    def connect(self, source: str = "127.0.0.1", tls: bool = False) -> socket.socket:
        """A connection from ``source`` (any 127/8 address works on Linux)."""
        raw = socket.socket()
        raw.bind((source, 0))
        raw.settimeout(15)
        raw.connect(("127.0.0.1", self.https_port if tls else self.http_port))
        if not tls:
            return raw
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        return ctx.wrap_socket(raw)

    def get(self, path: str, source: str = "127.0.0.1") -> tuple[int, bytes]:
        """A normal request: status and body."""
        with self.connect(source) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            return parse(read_until_closed(s)[1])

    def closed_total(self, reason: str) -> float:
        """acme_gateway_connections_closed_total for ``reason``."""
        text = self.get("/metrics")[1].decode()
        found = re.search(rf'connections_closed_total{{reason="{reason}"}} (\S+)', text)
        assert found, text
        return float(found.group(1))


def read_until_closed(s: socket.socket) -> tuple[float, bytes]:
    """Seconds until the server closed the connection, and everything it sent."""
    start, data = time.monotonic(), b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            chunk = b""
        if not chunk:
            return time.monotonic() - start, data
        data += chunk


def parse(response: bytes) -> tuple[int, bytes]:
    """Status and body of one HTTP response."""
    head, _, body = response.partition(b"\r\n\r\n")
    return (int(head.split()[1]) if head else 0), body


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("protocol")
    http_port, https_port = free_port(), free_port()
    config = tmp / "gateway.toml"
    config.write_text(to_toml({
        "server": {"data_dir": str(tmp / "data"), "listen": "127.0.0.1",
                   "https_port": https_port, "http_port": http_port,
                   "pkix_http_port": free_port(),
                   "header_timeout_seconds": HEADER, "body_timeout_seconds": BODY,
                   "keepalive_timeout_seconds": IDLE,
                   "tls_handshake_timeout_seconds": HANDSHAKE,
                   "max_connections": TOTAL, "max_connections_per_address": PER_ADDRESS},
        "est": {"labels": {"open": {"profile": "default", "auth": "basic"},
                           "closed": {"profile": "default", "auth": "none"}},
                "users": {"alice": hash_password("alice's password", 1000)}},
    }))
    log = tmp / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config",
                                    str(config)], stdout=out, stderr=out)
    gateway = Served(http_port, https_port, log, process)
    try:
        _wait_until_answering(gateway)
        yield gateway
    finally:
        process.terminate()
        process.wait(30)
    assert "Traceback" not in log.read_text()


def _wait_until_answering(gateway: Served) -> None:
    for _ in range(600):
        assert gateway.process.poll() is None, gateway.log.read_text()
        try:
            if gateway.get("/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the gateway did not answer")


def assert_within(seconds: float, deadline: float) -> None:
    """Closed at its deadline: not before, and not much after."""
    assert deadline - 0.2 <= seconds <= deadline + SLACK, (seconds, deadline)


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HT", b"GET /healthz HTTP/1.1\r\nHost: x\r\n"],
                         ids=["nothing", "half a request line", "headers never end"])
def test_incomplete_headers_are_closed_at_the_header_timeout(served: Served,
                                                             sent: bytes) -> None:
    before = served.closed_total("header_timeout")
    with served.connect() as stalled:
        stalled.sendall(sent)
        assert served.get("/healthz")[0] == 200  # others are served meanwhile
        seconds, answer = read_until_closed(stalled)
    assert answer == b""
    assert_within(seconds, HEADER)
    assert served.closed_total("header_timeout") == before + 1


def test_headers_sent_a_byte_at_a_time_do_not_extend_the_header_timeout(served: Served) -> None:
    with served.connect() as dribbler:
        start = time.monotonic()
        try:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: example.net\r\nX-Slow: yes\r\n":
                dribbler.sendall(bytes([byte]))
                time.sleep(0.1)
        except OSError:  # closed while we were still sending
            pass
        read_until_closed(dribbler)
    assert_within(time.monotonic() - start, HEADER)


def test_the_next_request_on_a_kept_alive_connection_gets_the_header_timeout(
        served: Served) -> None:
    """The header clock starts at the first byte after an answer, not only on a new connection."""
    before = served.closed_total("header_timeout")
    with served.connect() as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while b"\r\n\r\n" not in first:
            first += s.recv(65536)
        assert parse(first)[0] == 200
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the headers never end
        seconds, _ = read_until_closed(s)
    assert_within(seconds, HEADER)  # before the idle timeout (1.5 s) would close it
    assert served.closed_total("header_timeout") == before + 1


EST_AUTH = "Authorization: Basic " + base64.b64encode(b"alice:alice's password").decode()
ACME_HEAD = (b"POST /acme/new-account HTTP/1.1\r\nHost: x\r\n"
             b"Content-Type: application/jose+json\r\n")


EST_HEAD = (b"POST /.well-known/est/open/simpleenroll HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/pkcs10\r\n" + EST_AUTH.encode() + b"\r\n")


@pytest.mark.parametrize("tls,head", [(False, ACME_HEAD), (True, EST_HEAD)],
                         ids=["acme", "est"])
def test_a_stalled_body_gets_408_in_the_front_ends_form(served: Served, tls: bool,
                                                        head: bytes) -> None:
    before = served.closed_total("body_timeout")
    with served.connect(tls=tls) as stalled:
        stalled.sendall(head + b"Content-Length: 1000\r\n\r\n0123456789")
        assert served.get("/healthz")[0] == 200
        seconds, answer = read_until_closed(stalled)
    status, body = parse(answer)
    assert status == 408
    if tls:  # EST: one line of text
        assert body.count(b"\n") == 1 and b"request body" in body
    else:
        assert json.loads(body)["type"] == "urn:ietf:params:acme:error:malformed"
        assert "request body" in json.loads(body)["detail"]
    assert_within(seconds, BODY)
    assert served.closed_total("body_timeout") == before + 1


def test_the_body_timeout_bounds_each_read_not_the_whole_body(served: Served) -> None:
    body = b"x" * 40
    with served.connect() as slow:
        slow.sendall(ACME_HEAD + f"Content-Length: {len(body)}\r\n\r\n".encode())
        for i in range(0, len(body), 10):  # 2 s in all, no gap as long as BODY
            time.sleep(BODY / 2)
            slow.sendall(body[i:i + 10])
        status, problem = parse(read_until_closed(slow)[1])
    assert status == 400  # the JWS is refused: the body was read to its end
    assert json.loads(problem)["status"] == 400


@pytest.mark.parametrize("tls,path,headers", [
    (False, "/acme/new-account", "application/jose+json"),
    (True, "/.well-known/est/open/simpleenroll", f"application/pkcs10\r\n{EST_AUTH}"),
], ids=["acme", "est"])
def test_a_bad_chunk_after_the_headers_is_answered_400_at_once(
        served: Served, tls: bool, path: str, headers: str) -> None:
    with served.connect(tls=tls) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {headers}\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n".encode())
        time.sleep(0.2)  # the handler is waiting for the body now
        s.sendall(b"zz\r\nnot a chunk size\r\n")
        seconds, answer = read_until_closed(s)
    status, body = parse(answer)
    assert status == 400
    assert b"chunked" in body
    assert seconds < BODY  # not the body timeout: the framing error itself


def test_a_bad_chunk_after_an_answer_that_did_not_read_the_body(served: Served) -> None:
    with served.connect(tls=True) as s:
        s.sendall(b"POST /.well-known/est/closed/simpleenroll HTTP/1.1\r\nHost: x\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        time.sleep(0.3)  # refused (auth = none) before any of the body was read
        s.sendall(b"zz\r\n")
        seconds, answer = read_until_closed(s)
    assert parse(answer)[0] == 403
    assert seconds < BODY
    assert "Traceback" not in served.log.read_text()


def test_an_idle_keep_alive_connection_is_closed_at_the_idle_timeout(served: Served) -> None:
    before = served.closed_total("idle_timeout")
    with served.connect() as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        seconds, answer = read_until_closed(s)
    assert parse(answer)[0] == 200
    assert_within(seconds, IDLE)
    assert served.closed_total("idle_timeout") == before + 1


def test_a_stalled_tls_handshake_is_closed_and_counted(served: Served) -> None:
    before = served.closed_total("tls_handshake")
    with socket.create_connection(("127.0.0.1", served.https_port), timeout=15) as s:
        seconds, _ = read_until_closed(s)
    assert_within(seconds, HANDSHAKE)
    time.sleep(0.7)  # the count follows the loop's own abort
    assert served.closed_total("tls_handshake") == before + 1


def test_connections_over_the_per_address_cap_are_refused(served: Served) -> None:
    before = served.closed_total("over_address_cap")
    held = [served.connect() for _ in range(PER_ADDRESS)]
    try:
        with served.connect() as extra:
            seconds, answer = read_until_closed(extra)
        assert parse(answer)[0] == 503
        assert seconds < 0.5
        assert served.get("/healthz", source="127.0.0.2")[0] == 200  # another client is served
    finally:
        for s in held:
            s.close()
    assert served.closed_total("over_address_cap") == before + 1
    _eventually(lambda: served.get("/healthz")[0] == 200)  # the address has room again


def test_connections_over_the_total_cap_are_refused(served: Served) -> None:
    before = served.closed_total("over_total_cap")
    held = [served.connect(f"127.0.0.{1 + i // PER_ADDRESS}") for i in range(TOTAL)]
    try:
        with served.connect("127.0.0.9") as extra:
            assert parse(read_until_closed(extra)[1])[0] == 503
    finally:
        for s in held:
            s.close()
    _eventually(lambda: served.get("/healthz", source="127.0.0.9")[0] == 200)
    assert served.closed_total("over_total_cap") == before + 1


def test_bytes_that_are_not_http_get_400_one_log_line_and_a_count(served: Served) -> None:
    before = served.closed_total("bad_request")
    with served.connect() as s:
        s.sendall(b"GARBAGE\r\n\r\n")
        status, body = parse(read_until_closed(s)[1])
    assert status == 400
    assert body.count(b"\n") == 1
    assert served.closed_total("bad_request") == before + 1
    lines = [json.loads(line) for line in served.log.read_text().splitlines()
             if line.startswith("{")]
    assert any(line.get("logger") == "gateway.access" and line.get("status") == 400
               and line.get("method") == "UNKNOWN" for line in lines)
    metrics = served.get("/metrics")[1].decode()
    assert 'acme_gateway_http_requests_total{frontend="other",status="400"}' in metrics


def test_open_connections_are_a_gauge(served: Served) -> None:
    with served.connect(), served.connect():
        text = served.get("/metrics")[1].decode()
    found = re.search(r"^acme_gateway_connections_open (\S+)", text, re.M)
    assert found and float(found.group(1)) >= 3  # the two held and the scrape itself


def _eventually(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_body_past_the_flow_control_mark_and_a_pipelined_request_are_both_answered(
        served: Served) -> None:
    # 200 KiB: past the body reader's high-water mark, so reading pauses and resumes;
    # the request behind it waits in the parser until the first answer is read.
    body = b'{"protected":"' + b"A" * (200 * 1024) + b'","payload":"","signature":""}'
    first = (b"POST /acme/new-order HTTP/1.1\r\nHost: x\r\nContent-Type: application/jose+json\r\n"
             b"Content-Length: %d\r\n\r\n" % len(body)) + body
    second = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with served.connect() as s:
        s.sendall(first + second)
        _, data = read_until_closed(s)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
    assert statuses == [b"400", b"200"], data[:300]
    assert b"urn:ietf:params:acme:error:" in data
