"""ACME Renewal Information (RFC 9773): renewalInfo, ``replaces``, advance and revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway import keys
from gateway.app import create_app
from gateway.core.ari import cert_id
from gateway.core.renewals import Selection
from gateway.errors import ErrorKind, GatewayError
from gateway.validation import ValidationFailure
from tests.acme.flow import validate_all
from tests.acme.support import FakeValidator, Gateway, make_settings
from tests.acmeclient import AcmeClient, b64, make_csr

ACME = "urn:ietf:params:acme:error:"


@pytest.fixture
async def gateway(aiohttp_client: Any, tmp_path: Any) -> Gateway:
    """A gateway with a second profile whose window is the first half of validity."""
    validator = FakeValidator()
    settings = make_settings(tmp_path, profiles={
        "default": {}, "early": {"renewal_window_start": 0.1, "renewal_window_end": 0.5}},
        acme={"renewal_explanation_url": "https://status.example/ari"})
    return Gateway(await aiohttp_client(create_app(settings, validator=validator)), validator,
                   settings)


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _issued(c: AcmeClient, names: list[str], **payload: Any) -> tuple[dict[str, Any], str]:
    """An issued order (optionally with more newOrder fields) and its leaf's certID."""
    idents = [{"type": "dns", "value": n} for n in names]
    resp, order = await c.post(c.directory["newOrder"], {"identifiers": idents, **payload})
    assert resp.status == 201, order
    await validate_all(c, order)
    resp, done = await c.post(order["finalize"], {"csr": b64(make_csr(names)[0])})
    assert resp.status == 200 and done["status"] == "valid", done
    _, pem = await c.post(done["certificate"])
    ident = cert_id(x509.load_pem_x509_certificates(pem.encode())[0])
    assert ident is not None
    return done, ident


async def _renewal_info(gateway: Gateway, c: AcmeClient, ident: str) -> tuple[Any, Any]:
    async with gateway.http.session.get(f"{c.directory['renewalInfo']}/{ident}") as resp:
        return resp, await resp.json()


async def _order_replacing(c: AcmeClient, names: list[str], replaces: str) -> tuple[Any, Any]:
    idents = [{"type": "dns", "value": n} for n in names]
    return await c.post(c.directory["newOrder"], {"identifiers": idents, "replaces": replaces})


@pytest.mark.parametrize(("profile", "start", "end"), [("default", 0.6, 0.9),
                                                        ("early", 0.1, 0.5)])
async def test_window_per_profile(gateway: Gateway, profile: str, start: float,
                                  end: float) -> None:
    c = await gateway.ready_client()
    assert c.directory["renewalInfo"].endswith("/acme/renewal-info")
    _, ident = await _issued(c, ["win.example.com"], profile=profile)
    resp, body = await _renewal_info(gateway, c, ident)
    assert resp.status == 200 and resp.headers["Retry-After"] == "21600"
    window = body["suggestedWindow"]
    w_start, w_end = _when(window["start"]), _when(window["end"])
    now = datetime.now(UTC)
    validity = timedelta(days=90)  # the local CA backdates notBefore by at most minutes
    assert now + validity * start - timedelta(hours=1) <= w_start < w_end
    assert w_end <= now + validity * end + timedelta(hours=1)
    assert "explanationURL" not in body


@pytest.mark.parametrize(("ident", "status"), [
    ("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", 404),  # well-formed, never issued here
    ("not-a-cert-id", 400), ("aYhba4dGQEHhs3uEe6CuLN4ByNQ.gA", 400)])
async def test_unknown_and_malformed_cert_ids(gateway: Gateway, ident: str, status: int) -> None:
    c = gateway.client()
    await c.start()
    resp, body = await _renewal_info(gateway, c, ident)
    assert resp.status == status and body["type"] == ACME + "malformed"


async def test_revocation_moves_the_window_into_the_past(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    done, ident = await _issued(c, ["revoked.example.com"])
    _, pem = await c.post(done["certificate"])
    der = x509.load_pem_x509_certificates(pem.encode())[0].public_bytes(Encoding.DER)
    resp, _ = await c.post(c.directory["revokeCert"], {"certificate": b64(der), "reason": 1})
    assert resp.status == 200
    _, body = await _renewal_info(gateway, c, ident)
    assert _when(body["suggestedWindow"]["end"]) <= datetime.now(UTC)
    assert body["explanationURL"] == "https://status.example/ari"


async def test_advance_moves_selected_windows_into_the_past(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    _, hit = await _issued(c, ["incident.example.com"])
    _, spared = await _issued(c, ["fine.example.com"])
    renewals = gateway.http.app[keys.CORE].renewals
    assert await renewals.schedule(due_only=True) == []
    moved = await renewals.advance(Selection(names=("incident.*",)), actor="test",
                                   reason="mis-issuance", explanation_url="https://x.example/i")
    assert len(moved) == 1
    _, body = await _renewal_info(gateway, c, hit)
    assert _when(body["suggestedWindow"]["end"]) <= datetime.now(UTC)
    assert body["explanationURL"] == "https://x.example/i"
    _, body = await _renewal_info(gateway, c, spared)
    assert _when(body["suggestedWindow"]["start"]) > datetime.now(UTC) + timedelta(days=50)
    assert [s.certificate.serial for s in await renewals.schedule(due_only=True)] == \
        [moved[0].serial]


@pytest.mark.parametrize(("selection", "count"), [
    (Selection(profile="default"), 2), (Selection(profile="early"), 0),
    (Selection(ca="local", names=("fine.example.com",)), 1), (Selection(ca="other"), 0),
    (Selection(issued_before=datetime(2000, 1, 1, tzinfo=UTC)), 0),
    (Selection(issued_before=datetime.now(UTC) + timedelta(days=1)), 2)])
async def test_advance_selections(gateway: Gateway, selection: Selection, count: int) -> None:
    c = await gateway.ready_client()
    await _issued(c, ["incident.example.com"])
    await _issued(c, ["fine.example.com"])
    renewals = gateway.http.app[keys.CORE].renewals
    assert len(await renewals.advance(selection, actor="test", reason="drill")) == count
    assert len(await renewals.schedule(due_only=True)) == count


async def test_advance_needs_a_selection(gateway: Gateway) -> None:
    with pytest.raises(GatewayError) as refused:
        await gateway.http.app[keys.CORE].renewals.advance(Selection(), actor="t", reason="r")
    assert refused.value.kind is ErrorKind.MALFORMED


async def test_replaces_is_recorded(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    _, ident = await _issued(c, ["renew.example.com"])
    resp, order = await _order_replacing(c, ["renew.example.com", "www.renew.example.com"], ident)
    assert resp.status == 201, order
    assert order["replaces"] == ident


@pytest.mark.parametrize(("case", "status", "error"), [
    ("other-account", 403, "unauthorized"),
    ("no-shared-name", 400, "malformed"),
    ("unknown", 400, "malformed"),
    ("already-replaced", 409, "alreadyReplaced"),
])
async def test_replaces_refused(gateway: Gateway, case: str, status: int, error: str) -> None:
    c = await gateway.ready_client()
    _, ident = await _issued(c, ["old.example.com"])
    names, client = ["old.example.com"], c
    if case == "other-account":
        client = await gateway.ready_client()
    elif case == "no-shared-name":
        names = ["new.example.com"]
    elif case == "unknown":
        ident = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    else:
        resp, _ = await _order_replacing(c, names, ident)
        assert resp.status == 201
    resp, body = await _order_replacing(client, names, ident)
    assert resp.status == status and body["type"] == ACME + error, body


async def test_a_failed_replacement_may_be_retried(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    _, ident = await _issued(c, ["retry.example.com"])
    gateway.validator.failure = ValidationFailure(ErrorKind.INCORRECT_RESPONSE, "wrong")
    resp, order = await _order_replacing(c, ["retry.example.com"], ident)
    assert resp.status == 201
    await validate_all(c, order)
    gateway.validator.failure = None
    resp, body = await _order_replacing(c, ["retry.example.com"], ident)
    assert resp.status == 201, body
