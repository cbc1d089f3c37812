"""HTTP-01 against loopback responders: answers, redirects, the guard, bad responders."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from gateway.errors import ErrorKind
from gateway.validation import ChallengeTask, ValidationOutcome
from gateway.validation.http01 import challenge_hop, hop_of
from tests.validation.conftest import MakeVA, closed_port
from tests.validation.dnsserver import DnsResponder

TOKEN = "tok-EN_123"
KEY_AUTH = TOKEN + ".thumbprint-abc"
PATH = f"/.well-known/acme-challenge/{TOKEN}"
ServerFactory = Callable[..., Awaitable[TestServer]]


def task(name: str = "web.test", kind: str = "dns", **extra: Any) -> ChallengeTask:
    """An http-01 task for ``name``."""
    return ChallengeTask(kind, name, "http-01", TOKEN, KEY_AUTH, **extra)


async def serve(
    aiohttp_server: ServerFactory, routes: dict[str, Any], host: str = "127.0.0.1"
) -> TestServer:
    """Start an aiohttp responder on ``host`` with the given GET routes."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    return await aiohttp_server(app, host=host)


def text(body: str, status: int = 200) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body, status=status)

    return handler


def redirect(location: str, status: int = 302) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Redirect to ``location``, where ``{port}`` is the port the request came to."""

    async def handler(request: web.Request) -> web.Response:
        port = request.url.port
        return web.Response(status=status, headers={"Location": location.format(port=port)})

    return handler


def assert_failed(outcome: ValidationOutcome, kind: ErrorKind, *words: str) -> None:
    assert outcome.failure is not None, outcome
    assert outcome.failure.kind is kind, outcome.failure
    for word in words:
        assert word in outcome.failure.detail, outcome.failure.detail


async def test_valid_response_is_accepted_with_surrounding_whitespace(
    aiohttp_server: ServerFactory, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    seen: dict[str, str] = {}

    async def handler(request: web.Request) -> web.Response:
        seen["host"] = request.headers["Host"]
        return web.Response(text=f"  {KEY_AUTH}\r\n")

    server = await serve(aiohttp_server, {PATH: handler})
    dns_server.zone.add("web.test", "A", "127.0.0.1")
    va = await make_va(http01_port=server.port)

    outcome = await va.validate(task())

    assert outcome.valid, outcome.failure
    assert seen["host"] == f"web.test:{server.port}"
    (record,) = outcome.records
    assert record == {
        "attempt": 1,
        "url": f"http://web.test:{server.port}{PATH}",
        "hostname": "web.test",
        "port": server.port,
        "addressesResolved": ["127.0.0.1"],
        "addressUsed": "127.0.0.1",
    }


@pytest.mark.parametrize(
    ("body", "status", "kind", "words"),
    [
        (
            TOKEN + ".other-thumbprint",
            200,
            ErrorKind.INCORRECT_RESPONSE,
            ("not the key authorization", f"expected {KEY_AUTH!r}"),
        ),
        (
            KEY_AUTH + "x",
            200,
            ErrorKind.INCORRECT_RESPONSE,
            (f"returned {KEY_AUTH + 'x'!r}", f"expected {KEY_AUTH!r}"),
        ),
        ("", 200, ErrorKind.INCORRECT_RESPONSE, ("returned ''",)),
        (KEY_AUTH, 404, ErrorKind.UNAUTHORIZED, ("HTTP 404",)),
        (KEY_AUTH, 500, ErrorKind.UNAUTHORIZED, ("HTTP 500",)),
    ],
)
async def test_wrong_answers_fail_without_retry(
    aiohttp_server: ServerFactory,
    dns_server: DnsResponder,
    make_va: MakeVA,
    body: str,
    status: int,
    kind: ErrorKind,
    words: tuple[str, ...],
) -> None:
    server = await serve(aiohttp_server, {PATH: text(body, status)})
    dns_server.zone.add("web.test", "A", "127.0.0.1")
    va = await make_va(http01_port=server.port, attempts=3)

    outcome = await va.validate(task())

    assert_failed(outcome, kind, *words)
    assert [r["attempt"] for r in outcome.records] == [1]
    assert outcome.records[0]["error"].startswith(kind.value)


async def test_unknown_name_is_a_dns_failure(dns_server: DnsResponder, make_va: MakeVA) -> None:
    va = await make_va()
    outcome = await va.validate(task("missing.test"))
    assert_failed(outcome, ErrorKind.DNS, "missing.test", "NXDOMAIN")


async def test_blocked_addresses_are_never_contacted(
    aiohttp_server: ServerFactory, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text=KEY_AUTH)

    server = await serve(aiohttp_server, {PATH: handler})
    dns_server.zone.add("web.test", "A", "127.0.0.1")
    va = await make_va(http01_port=server.port, allow_loopback=False)

    by_name = await va.validate(task())
    by_ip = await va.validate(task("127.0.0.1", "ip"))

    assert_failed(by_name, ErrorKind.DNS, "blocked network 127.0.0.0/8")
    assert_failed(by_ip, ErrorKind.REJECTED_IDENTIFIER, "blocked network 127.0.0.0/8")
    assert hits == []


async def test_only_allowed_addresses_of_a_name_are_used(
    aiohttp_server: ServerFactory, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    server = await serve(aiohttp_server, {PATH: text(KEY_AUTH)})
    dns_server.zone.add("web.test", "A", "169.254.169.254", "127.0.0.1")
    va = await make_va(http01_port=server.port)

    outcome = await va.validate(task())

    assert outcome.valid, outcome.failure
    assert outcome.records[0]["addressUsed"] == "127.0.0.1"
    assert sorted(outcome.records[0]["addressesResolved"]) == ["127.0.0.1", "169.254.169.254"]


async def test_rebinding_cannot_redirect_the_connection(
    aiohttp_server: ServerFactory, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    server = await serve(aiohttp_server, {PATH: text(KEY_AUTH)})
    # The first answer passes the guard; any later lookup would yield the metadata address.
    dns_server.zone.first_answer[("web.test", "A")] = ["127.0.0.1"]
    dns_server.zone.add("web.test", "A", "169.254.169.254")
    va = await make_va(http01_port=server.port)

    outcome = await va.validate(task())

    assert outcome.valid, outcome.failure
    assert dns_server.zone.queries.count(("web.test", "A")) == 1
    assert outcome.records[0]["addressUsed"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("ip", "listen", "host"),
    [("127.0.0.1", "127.0.0.1", "127.0.0.1:{port}"), ("::1", "::1", "[::1]:{port}")],
)
async def test_ip_identifier_is_fetched_by_address(
    aiohttp_server: ServerFactory, make_va: MakeVA, ip: str, listen: str, host: str
) -> None:
    seen: dict[str, str] = {}

    async def handler(request: web.Request) -> web.Response:
        seen["host"] = request.headers["Host"]
        return web.Response(text=KEY_AUTH)

    server = await serve(aiohttp_server, {PATH: handler}, host=listen)
    va = await make_va(http01_port=server.port)

    outcome = await va.validate(task(ip, "ip"))

    assert outcome.valid, outcome.failure
    assert seen["host"] == host.format(port=server.port)


async def test_ipv6_only_name(
    aiohttp_server: ServerFactory, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    server = await serve(aiohttp_server, {PATH: text(KEY_AUTH)}, host="::1")
    dns_server.zone.add("six.test", "AAAA", "::1")
    va = await make_va(http01_port=server.port)

    outcome = await va.validate(task("six.test"))

    assert outcome.valid, outcome.failure
    assert outcome.records[0]["addressUsed"] == "::1"


async def test_falls_back_to_ipv4_when_ipv6_refuses(
    aiohttp_server: ServerFactory, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    server = await serve(aiohttp_server, {PATH: text(KEY_AUTH)})  # IPv4 only
    dns_server.zone.add("dual.test", "AAAA", "::1")
    dns_server.zone.add("dual.test", "A", "127.0.0.1")
    va = await make_va(http01_port=server.port)

    outcome = await va.validate(task("dual.test"))

    assert outcome.valid, outcome.failure
    assert outcome.records[0]["addressUsed"] == "127.0.0.1"
    assert outcome.records[0]["addressesTried"] == ["::1", "127.0.0.1"]


async def test_redirect_is_followed_and_recorded(
    aiohttp_server: ServerFactory, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    seen: dict[str, str] = {}

    async def final(request: web.Request) -> web.Response:
        seen["host"] = request.headers["Host"]
        return web.Response(text=KEY_AUTH)

    routes = {PATH: redirect("http://other.test:{port}/final?x=1#frag"), "/final": final}
    server = await serve(aiohttp_server, routes)
    dns_server.zone.add("web.test", "A", "127.0.0.1")
    dns_server.zone.add("other.test", "A", "127.0.0.1")
    va = await make_va(http01_port=server.port)

    outcome = await va.validate(task())

    assert outcome.valid, outcome.failure
    assert [r["url"] for r in outcome.records] == [
        f"http://web.test:{server.port}{PATH}",
        f"http://other.test:{server.port}/final?x=1",
    ]
    assert seen["host"] == f"other.test:{server.port}"
    assert ("other.test", "A") in dns_server.zone.queries


async def test_relative_redirect_keeps_the_host(
    aiohttp_server: ServerFactory, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    server = await serve(aiohttp_server, {PATH: redirect("/moved", 301), "/moved": text(KEY_AUTH)})
    dns_server.zone.add("web.test", "A", "127.0.0.1")
    va = await make_va(http01_port=server.port)

    outcome = await va.validate(task())

    assert outcome.valid, outcome.failure
    assert outcome.records[1]["url"] == f"http://web.test:{server.port}/moved"


@pytest.mark.parametrize(
    ("routes", "words"),
    [
        ({PATH: redirect(PATH)}, ("redirect loop",)),
        (
            {
                PATH: redirect("/a"),
                "/a": redirect("/b"),
                "/b": redirect("/c"),
                "/c": redirect("/d"),
            },
            ("more than 2 redirects",),
        ),
        ({PATH: redirect("http://web.test:1/x")}, ("port 1", "allowed ports")),
        ({PATH: redirect("https://web.test:8/x")}, ("port 8",)),
        ({PATH: redirect("ftp://web.test/x")}, ("only http(s)",)),
        ({PATH: redirect("http://[::1")}, ("invalid URL",)),
        ({PATH: web.Response}, ("without a Location",)),
        ({PATH: redirect("http://meta.test:{port}/")}, ("blocked network 169.254.0.0/16",)),
        ({PATH: redirect("http://169.254.169.254:{port}/")}, ("blocked network 169.254.0.0/16",)),
    ],
)
async def test_bad_redirects_are_connection_failures(
    aiohttp_server: ServerFactory,
    dns_server: DnsResponder,
    make_va: MakeVA,
    routes: dict[str, Any],
    words: tuple[str, ...],
) -> None:
    if routes.get(PATH) is web.Response:
        routes = {PATH: text("", status=302)}
    server = await serve(aiohttp_server, routes)
    dns_server.zone.add("web.test", "A", "127.0.0.1")
    dns_server.zone.add("meta.test", "A", "169.254.169.254")
    va = await make_va(
        http01_port=server.port, max_redirects=2, http01_redirect_ports=(server.port,)
    )

    outcome = await va.validate(task())

    assert_failed(outcome, ErrorKind.CONNECTION, *words)
    assert "error" in outcome.records[-1]


async def test_hanging_responder_times_out_as_connection_failure(
    aiohttp_server: ServerFactory, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        return web.Response(text=KEY_AUTH)

    server = await serve(aiohttp_server, {PATH: hang})
    dns_server.zone.add("web.test", "A", "127.0.0.1")
    va = await make_va(http01_port=server.port, attempt_timeout_seconds=0.3)

    started = time.monotonic()
    outcome = await va.validate(task())

    assert time.monotonic() - started < 1.5
    assert_failed(outcome, ErrorKind.CONNECTION, "timed out after 0.3 s", "fetching")
    assert outcome.records[0]["error"].startswith("connection: timed out")
    never.set()


async def test_endless_body_is_cut_at_the_limit(
    aiohttp_server: ServerFactory, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    sent = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse()
        await response.prepare(request)
        while sent < 50_000_000:  # bounded so a broken validator cannot hang the test run
            await response.write(b"A" * 4096)
            sent += 4096
        return response

    server = await serve(aiohttp_server, {PATH: endless})
    dns_server.zone.add("web.test", "A", "127.0.0.1")
    va = await make_va(http01_port=server.port, max_body_bytes=1024)

    outcome = await va.validate(task())

    assert_failed(outcome, ErrorKind.INCORRECT_RESPONSE, "larger than 1024 bytes")
    assert sent < 50_000_000


async def test_declared_oversized_body_is_refused_unread(
    aiohttp_server: ServerFactory, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    server = await serve(aiohttp_server, {PATH: text(KEY_AUTH + " " * 5000)})
    dns_server.zone.add("web.test", "A", "127.0.0.1")
    va = await make_va(http01_port=server.port, max_body_bytes=1024)

    outcome = await va.validate(task())

    assert_failed(outcome, ErrorKind.INCORRECT_RESPONSE, "larger than 1024 bytes")


async def test_not_http_is_a_connection_failure(dns_server: DnsResponder, make_va: MakeVA) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    dns_server.zone.add("web.test", "A", "127.0.0.1")
    va = await make_va(http01_port=port)

    outcome = await va.validate(task())

    listener.close()
    assert_failed(outcome, ErrorKind.CONNECTION)


async def test_refused_connection_is_retried_with_backoff(
    dns_server: DnsResponder, make_va: MakeVA
) -> None:
    port = await closed_port()
    naps: list[float] = []

    async def sleep(seconds: float) -> None:
        naps.append(seconds)

    dns_server.zone.add("web.test", "A", "127.0.0.1")
    va = await make_va(http01_port=port, attempts=3, retry_backoff_seconds=0.5, sleep=sleep)

    outcome = await va.validate(task())

    assert_failed(outcome, ErrorKind.CONNECTION, "cannot connect", "after 3 attempts")
    assert [r["attempt"] for r in outcome.records] == [1, 2, 3]
    assert naps == [0.5, 1.0]


async def test_retry_succeeds_when_the_responder_recovers(
    aiohttp_server: ServerFactory, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    calls = 0

    async def flaky(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            assert request.transport is not None
            request.transport.abort()  # a connection reset mid-request
        return web.Response(text=KEY_AUTH)

    server = await serve(aiohttp_server, {PATH: flaky})
    dns_server.zone.add("web.test", "A", "127.0.0.1")

    async def no_wait(seconds: float) -> None:
        return None

    va = await make_va(http01_port=server.port, attempts=2, sleep=no_wait)

    outcome = await va.validate(task())

    assert outcome.valid, outcome.failure
    assert [r["attempt"] for r in outcome.records] == [1, 2]
    assert "error" in outcome.records[0] and "error" not in outcome.records[1]


async def test_wildcard_cannot_use_http01(make_va: MakeVA) -> None:
    va = await make_va()
    outcome = await va.validate(task(wildcard=True))
    assert_failed(outcome, ErrorKind.MALFORMED, "only be validated with dns-01")


HOSTS = ["web.test", "a", "127.0.0.1", "xn--bcher-kva.example", "WEB.test", "::1", "bücher.test"]


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("port", [80, 5002])
@pytest.mark.parametrize("token", [TOKEN, "a%2Fb", "a b"])
def test_challenge_url_is_what_yarl_makes_of_it(host: str, port: int, token: str) -> None:
    made = challenge_hop(host, port, token)
    url = URL.build(scheme="http", host=host, port=port, path=PATH.replace(TOKEN, token))

    assert made[:5] == hop_of(url)[:5]
    assert str(made.url or URL(made.shown, encoded=True)) == str(url)
