"""Alternate chains (RFC 8555 §7.4.2): the default chain links to the others, and back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from gateway import config
from gateway.app import build_connectors, create_app
from gateway.errors import ConfigError
from tests.acme.chains_support import OLD_ROOT_CN, create_local_ca, cross_signed_chain
from tests.acme.flow import issue
from tests.acme.support import FakeValidator, Gateway


def _doc(tmp_path: Path, **ca: Any) -> dict[str, Any]:
    return {"server": {"data_dir": str(tmp_path)}, "cas": {"local": {"type": "local", **ca}}}


@pytest.fixture
async def gateway(aiohttp_client: Any, tmp_path: Path) -> Gateway:
    """A local CA that also offers its certificate cross-signed by an older root."""
    ca_pem = await create_local_ca(_doc(tmp_path))
    alt = cross_signed_chain(ca_pem, tmp_path / "cross.pem")
    settings = config.parse(_doc(tmp_path, alternate_chain_files=[str(alt)]), "test")
    validator = FakeValidator()
    return Gateway(await aiohttp_client(create_app(settings, validator=validator)), validator,
                   settings)


def _alternates(resp: Any) -> list[str]:
    return [link.split(">")[0][1:] for link in resp.headers.getall("Link")
            if link.endswith('rel="alternate"')]


def _top_issuer(pem: str) -> str:
    chain = x509.load_pem_x509_certificates(pem.encode())
    return str(chain[-1].issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)


async def test_default_chain_names_its_alternate_and_back(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    _, order, _ = await issue(c, ["alt.example.com"])
    resp, default = await c.post(order["certificate"])
    assert resp.status == 200
    [alternate_url] = _alternates(resp)
    assert alternate_url == order["certificate"] + "/1"
    resp, alternate = await c.post(alternate_url)
    assert resp.status == 200 and _alternates(resp) == [order["certificate"]]
    leaf = x509.load_pem_x509_certificates(default.encode())[0]
    assert x509.load_pem_x509_certificates(alternate.encode())[0] == leaf
    assert _top_issuer(alternate) == OLD_ROOT_CN != _top_issuer(default)


@pytest.mark.parametrize("suffix", ["/2", "/01x", "/-1", "/%D9%A1"])
async def test_no_such_alternate(gateway: Gateway, suffix: str) -> None:
    c = await gateway.ready_client()
    _, order, _ = await issue(c, ["none.example.com"])
    resp, body = await c.post(order["certificate"] + suffix)
    assert resp.status == 404, body


async def test_a_chain_that_did_not_issue_the_leaf_is_not_offered(
        aiohttp_client: Any, tmp_path: Path) -> None:
    other_ca = await create_local_ca(_doc(tmp_path / "other"))
    await create_local_ca(_doc(tmp_path))
    alt = cross_signed_chain(other_ca, tmp_path / "foreign.pem")
    settings = config.parse(_doc(tmp_path, alternate_chain_files=[str(alt)]), "test")
    http = await aiohttp_client(create_app(settings, validator=FakeValidator()))
    gw = Gateway(http, FakeValidator(), settings)
    c = await gw.ready_client()
    _, order, _ = await issue(c, ["foreign.example.com"])
    resp, _ = await c.post(order["certificate"])
    assert resp.status == 200 and _alternates(resp) == []


def test_an_unreadable_chain_file_names_the_key(tmp_path: Path) -> None:
    settings = config.parse(_doc(tmp_path, alternate_chain_files=[str(tmp_path / "nope.pem")]),
                            "test.toml")
    with pytest.raises(ConfigError) as refused:
        build_connectors(settings)
    assert "alternate_chain_files" in str(refused.value)
