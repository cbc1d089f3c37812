"""Body limits per front end (413 from Content-Length or by counting a chunked body) and the
wire form of every refusal: problem documents under /acme/, one line of text for EST."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.acme.post import MAX_BODY as ACME_MAX
from gateway.app import create_app
from gateway.bodies import DEFAULT_MAX_BODY
from gateway.est.wire import MAX_BODY as EST_MAX
from tests.acme.support import FakeValidator, make_settings
from tests.est.support import PASSWORD, Gateway, Manufacturer, est_section, request, running_gateway

JOSE = {"Content-Type": "application/jose+json"}


async def chunked(size: int) -> AsyncIterator[bytes]:
    """A body of ``size`` bytes sent without Content-Length (chunked)."""
    for _ in range(size // 4096):
        yield b"a" * 4096
    yield b"a" * (size % 4096)


@pytest.fixture
async def acme(aiohttp_client: Any, tmp_path: Path) -> Any:
    return await aiohttp_client(create_app(make_settings(tmp_path), validator=FakeValidator()))


def assert_problem(resp: aiohttp.ClientResponse, body: bytes, status: int) -> None:
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    doc = json.loads(body)
    assert doc["status"] == status and doc["type"].startswith("urn:ietf:params:acme:error:")
    assert resp.headers["Replay-Nonce"]
    assert 'rel="index"' in resp.headers["Link"]


@pytest.mark.parametrize("data", [
    b"a" * (ACME_MAX + 1), chunked(ACME_MAX + 1)], ids=["Content-Length", "chunked"])
async def test_acme_bodies_over_the_limit_get_413_problem_documents(acme: Any,
                                                                    data: Any) -> None:
    resp = await acme.post("/acme/new-account", data=data, headers=JOSE)
    assert_problem(resp, await resp.read(), 413)
    assert f"{ACME_MAX} bytes" in (await resp.json(content_type=None))["detail"]


async def test_an_acme_body_within_the_limit_is_read(acme: Any) -> None:
    resp = await acme.post("/acme/new-account", data=chunked(ACME_MAX), headers=JOSE)
    assert_problem(resp, await resp.read(), 400)  # read whole, then refused as a JWS


@pytest.mark.parametrize("method,path,headers,status", [
    ("GET", "/acme/nope", {}, 404),
    ("GET", "/acme", {}, 404),
    ("GET", "/acme//directory", {}, 404),
    ("GET", "/acme/../acme/x", {}, 404),
    ("PUT", "/acme/new-order", {}, 405),
    ("POST", "/acme/new-order", {"Content-Type": "text/plain"}, 415),
])
async def test_every_acme_refusal_is_a_problem_document(acme: Any, method: str, path: str,
                                                        headers: dict[str, str],
                                                        status: int) -> None:
    url = acme.make_url("/").with_path(path, encoded=True)
    async with acme.session.request(method, url, headers=headers, data=b"{}") as resp:
        assert_problem(resp, await resp.read(), status)


@pytest.fixture
async def est(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(tmp_path, est_section(Manufacturer(tmp_path).ca_file)) as gw:
        yield gw


async def est_post(gw: Gateway, data: Any) -> tuple[int, str, bytes]:
    status, headers, body = await request(gw, "POST", "/basic/simpleenroll", data,
                                          auth=("alice", PASSWORD))
    return status, headers["Content-Type"].split(";")[0], body


@pytest.mark.parametrize("data", [
    b"a" * (EST_MAX + 1), chunked(EST_MAX + 1)], ids=["Content-Length", "chunked"])
async def test_est_bodies_over_64_kib_get_413_and_one_line(est: Gateway, data: Any) -> None:
    status, content_type, body = await est_post(est, data)
    assert (status, content_type) == (413, "text/plain")
    assert body.count(b"\n") == 1 and f"{EST_MAX} bytes".encode() in body


async def test_an_est_body_within_64_kib_is_read(est: Gateway) -> None:
    status, _, body = await est_post(est, chunked(EST_MAX))
    assert status == 400 and b"larger" not in body


async def test_est_cacerts_answers_head_like_get(est: Gateway) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(est.url + "/cacerts", ssl=est.client_context()) as got:
            length = len(await got.read())
        async with session.head(est.url + "/cacerts", ssl=est.client_context()) as head:
            assert head.status == 200
            assert head.headers["Content-Type"] == got.headers["Content-Type"]
            assert int(head.headers["Content-Length"]) == length


@pytest.mark.parametrize("path", ["/metrics", "/pkix/local/ocsp"])
async def test_other_routes_refuse_a_content_length_over_their_limit(acme: Any,
                                                                     path: str) -> None:
    headers = {"Content-Type": "application/ocsp-request"}
    resp = await acme.post(path, data=b"a" * (DEFAULT_MAX_BODY + 1), headers=headers)
    assert resp.status == 413
