"""Finalize checks keys: weak or malformed CSR keys are refused; the CSR's key is compared
with the account's, the CA's answer with the CSR's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from connectors.base import Issued, IssueRequest, IssueResult
from gateway.app import create_app
from tests.acme.support import FakeValidator
from tests.acmeclient import AcmeClient, make_csr
from tests.fakes.scripted_ca import ScriptedCA
from tests.policy.support import finalize, ready_order, settings_for
from tests.weakkeys import refused_csr_cases

BAD_PUBLIC_KEY = "urn:ietf:params:acme:error:badPublicKey"


class WrongKeyCA(ScriptedCA):
    """Issues, but for a key of its own instead of the CSR's."""

    async def issue(self, request: IssueRequest) -> IssueResult:
        other, _ = make_csr(list(request.dns_names), ec.generate_private_key(ec.SECP256R1()))
        result = await super().issue(IssueRequest(
            request_id=request.request_id, csr_der=other, profile=request.profile,
            dns_names=request.dns_names, ip_addresses=request.ip_addresses))
        assert isinstance(result, Issued)
        return result


async def _client(aiohttp_client: Any, tmp_path: Any, ca: Any = None) -> AcmeClient:
    connectors = {"local": ca} if ca is not None else None
    app = create_app(settings_for(tmp_path), validator=FakeValidator(), connectors=connectors)
    http = await aiohttp_client(app)
    c = AcmeClient(http.session, str(http.make_url("/acme/directory")))
    await c.start()
    await c.register()
    return c


async def test_csr_with_the_account_key_is_refused(aiohttp_client: Any, tmp_path: Any) -> None:
    c = await _client(aiohttp_client, tmp_path)
    order = await ready_order(c, ["a.example.com"], "default")
    for _ in range(2):  # the second time the account key's hash comes from the cache
        resp, body = await finalize(c, order, make_csr(["a.example.com"], c.key)[0])
        assert resp.status == 400 and body["type"].endswith(":badCSR")
        assert "differ from the account key" in body["detail"]
    resp, body = await finalize(c, order, make_csr(["a.example.com"])[0])
    assert body["status"] == "valid"


async def test_certificate_for_another_key_fails_the_order(aiohttp_client: Any,
                                                           tmp_path: Any) -> None:
    c = await _client(aiohttp_client, tmp_path, WrongKeyCA())
    order = await ready_order(c, ["b.example.com"], "default")
    _, body = await finalize(c, order, make_csr(["b.example.com"])[0])
    assert body["status"] == "invalid"
    assert body["error"]["type"].endswith(":serverInternal")
    assert "different key" in body["error"]["detail"]
    assert "certificate" not in body


CASES = refused_csr_cases(lambda key: make_csr(["w.example.com"], key)[0])


@pytest.mark.parametrize(("case", "csr", "prefix", "words"), CASES, ids=[c[0] for c in CASES])
async def test_finalize_refuses_the_key_with_the_reason(aiohttp_client: Any, tmp_path: Any,
                                                       case: str, csr: Callable[[], bytes],
                                                       prefix: str, words: str) -> None:
    c = await _client(aiohttp_client, tmp_path)
    order = await ready_order(c, ["w.example.com"], "default")
    resp, body = await finalize(c, order, csr())
    assert resp.status == 400 and body["type"] == BAD_PUBLIC_KEY, case
    assert body["detail"].startswith(prefix) and words in body["detail"], case
    resp, body = await finalize(c, order, make_csr(["w.example.com"])[0])
    assert body["status"] == "valid"  # the refusal left the order ready
