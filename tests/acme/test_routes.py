"""The ACME routes on the gateway's router: every answer carries its own request's URLs."""

from __future__ import annotations

import pytest

from tests.acme.conftest import Gateway


@pytest.mark.parametrize("path,status", [("/acme/directory", 200), ("/acme/nope", 404),
                                         ("/acme/new-nonce", 204)])
async def test_each_answer_links_the_directory_under_the_host_it_was_asked_at(
        gateway: Gateway, path: str, status: int) -> None:
    for host in ("a.example", "b.example:8443", "a.example"):
        resp = await gateway.http.get(path, headers={"Host": host})
        assert resp.status == status
        assert resp.headers["Link"] == f'<http://{host}/acme/directory>;rel="index"'
        assert resp.headers["Replay-Nonce"]
        if status == 200:
            assert (await resp.json())["newNonce"] == f"http://{host}/acme/new-nonce"


async def test_a_wrong_method_is_a_problem_document_naming_the_allowed_one(
        gateway: Gateway) -> None:
    resp = await gateway.http.put("/acme/new-order", data=b"{}")
    assert resp.status == 405
    assert resp.content_type == "application/problem+json"
    assert "POST" in (await resp.json(content_type=None))["detail"]
    assert resp.headers["Replay-Nonce"] and 'rel="index"' in resp.headers["Link"]
