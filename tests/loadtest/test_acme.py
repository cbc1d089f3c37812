"""The ACME session: nonce reuse and the single retry on badNonce, against a scripted server."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from loadtest.acme import AcmeError, AcmeSession, Reply, problem_of
from loadtest.jose import AccountKey, b64url_decode
from loadtest.stats import Recorder

BAD_NONCE = {
    "type": "urn:ietf:params:acme:error:badNonce",
    "detail": "JWS has an invalid anti-replay nonce",
}


class Scripted:
    """Answers POST /thing with the queued statuses; records the nonces it was sent."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.nonces_seen: list[str] = []
        self.counter = 0

    def fresh(self) -> str:
        self.counter += 1
        return f"nonce-{self.counter}"

    async def new_nonce(self, request: web.Request) -> web.Response:
        return web.Response(headers={"Replay-Nonce": self.fresh()})

    async def thing(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.nonces_seen.append(json.loads(b64url_decode(body["protected"]))["nonce"])
        status = self.statuses.pop(0)
        headers = {"Replay-Nonce": self.fresh()}
        if status == 400:
            return web.json_response(
                BAD_NONCE, status=400, headers=headers, content_type="application/problem+json"
            )
        return web.json_response({"status": "valid"}, status=status, headers=headers)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("HEAD", "/nonce", self.new_nonce)
        app.router.add_post("/thing", self.thing)
        return app


async def session_for(
    aiohttp_server: Any, scripted: Scripted, http: aiohttp.ClientSession
) -> AcmeSession:
    server = await aiohttp_server(scripted.app())
    session = AcmeSession(http, str(server.make_url("/dir")), Recorder())
    session.directory = {"newNonce": str(server.make_url("/nonce"))}
    session.thing_url = str(server.make_url("/thing"))  # type: ignore[attr-defined]
    return session


async def test_bad_nonce_is_retried_once_with_the_nonce_from_the_error(aiohttp_server: Any) -> None:
    scripted = Scripted([400, 200, 200])
    async with aiohttp.ClientSession() as http:
        session = await session_for(aiohttp_server, scripted, http)
        key = AccountKey.generate()
        reply = await session.post(session.thing_url, key, {})  # type: ignore[attr-defined]
        assert reply.json() == {"status": "valid"}
        await session.post(session.thing_url, key, {})  # type: ignore[attr-defined]
    # nonce-1 from newNonce; nonce-2 came with the badNonce error; nonce-3 with the success.
    assert scripted.nonces_seen == ["nonce-1", "nonce-2", "nonce-3"]
    assert session.recorder.counters["bad_nonce_retries"] == 1
    assert session.recorder.counters["nonce_fetched"] == 1


async def test_second_bad_nonce_is_an_error(aiohttp_server: Any) -> None:
    scripted = Scripted([400, 400])
    async with aiohttp.ClientSession() as http:
        session = await session_for(aiohttp_server, scripted, http)
        with pytest.raises(AcmeError) as caught:
            await session.post(session.thing_url, AccountKey.generate(), {})  # type: ignore[attr-defined]
    assert caught.value.kind == "badNonce"


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (403, b'{"type": "urn:ietf:params:acme:error:unauthorized"}', "unauthorized"),
        (429, b'{"type": "urn:ietf:params:acme:error:rateLimited"}', "rateLimited"),
        (500, b"<html>oops</html>", "http-500"),
        (400, b'{"detail": "no type"}', "http-400"),
    ],
)
def test_problem_kind(status: int, body: bytes, kind: str) -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    assert problem_of(Reply(status, CIMultiDictProxy(CIMultiDict()), body)).kind == kind


@pytest.mark.parametrize(("value", "seconds"), [("3", 3.0), ("", 0.5), ("Wed, 21 Oct 2015", 0.5)])
def test_retry_after_integer_seconds_only(value: str, seconds: float) -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    headers = CIMultiDictProxy(CIMultiDict({"Retry-After": value} if value else {}))
    assert Reply(200, headers, b"{}").retry_after(0.5) == seconds


async def test_pool_hands_out_the_newest_nonce_first() -> None:
    async with aiohttp.ClientSession() as http:
        session = AcmeSession(http, "http://127.0.0.1:1/dir", Recorder())
        session.nonces.extend(["old", "new"])
        assert await session.nonce() == "new"
        assert await session.nonce() == "old"
    assert session.recorder.counters["nonce_reused"] == 2


@pytest.mark.parametrize(("ignore", "delay"), [(False, 3.0), (True, 0.05)])
def test_polls_follow_retry_after_unless_told_to_ignore_it(ignore: bool, delay: float) -> None:
    """``--ignore-retry-after`` plays the client that polls on its own clock."""
    from multidict import CIMultiDict, CIMultiDictProxy

    from loadtest.flow import FlowOptions, OrderFlow

    flow = object.__new__(OrderFlow)  # only the options matter to the delay
    flow.options = FlowOptions(poll_interval=0.05, ignore_retry_after=ignore)
    reply = Reply(200, CIMultiDictProxy(CIMultiDict({"Retry-After": "3"})), b"{}")
    assert flow._poll_delay(reply) == delay
