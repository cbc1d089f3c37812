"""revokeCert by the account and by the certificate's own key (RFC 8555 §7.6)."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.acme.flow import issue
from tests.acme.support import Gateway
from tests.acmeclient import AcmeClient, b64

ACME = "urn:ietf:params:acme:error:"


async def leaf_der(c: AcmeClient, order: dict) -> bytes:  # type: ignore[type-arg]
    _, pem = await c.post(order["certificate"])
    return x509.load_pem_x509_certificates(pem.encode())[0].public_bytes(Encoding.DER)


async def test_revoke_by_account_then_already_revoked(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    _, order, _ = await issue(c, ["rev.example.com"])
    der = await leaf_der(c, order)
    resp, _ = await c.post(c.directory["revokeCert"], {"certificate": b64(der), "reason": 4})
    assert resp.status == 200
    resp, body = await c.post(c.directory["revokeCert"], {"certificate": b64(der)})
    assert resp.status == 400 and body["type"] == ACME + "alreadyRevoked"


async def test_revoke_by_certificate_key(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    _, order, cert_key = await issue(c, ["key.example.com"])
    der = await leaf_der(c, order)
    stranger = gateway.client()
    await stranger.start()
    stranger.key = cert_key
    resp, body = await stranger.post(c.directory["revokeCert"],
                                     {"certificate": b64(der), "reason": 1}, use_jwk=True)
    assert resp.status == 200, body


async def test_revoke_by_another_account_is_refused(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    _, order, _ = await issue(c, ["other.example.com"])
    der = await leaf_der(c, order)
    other = await gateway.ready_client()
    resp, body = await other.post(c.directory["revokeCert"], {"certificate": b64(der)})
    assert resp.status == 403 and body["type"] == ACME + "unauthorized"


async def test_bad_reason_and_unknown_certificate(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    _, order, _ = await issue(c, ["reason.example.com"])
    der = await leaf_der(c, order)
    resp, body = await c.post(c.directory["revokeCert"], {"certificate": b64(der), "reason": 7})
    assert resp.status == 400 and body["type"] == ACME + "badRevocationReason"
    resp, body = await c.post(c.directory["revokeCert"], {"certificate": b64(b"junk")})
    assert resp.status == 400 and body["type"] == ACME + "malformed"
