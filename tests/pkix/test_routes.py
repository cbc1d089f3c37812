"""The /pkix routes over HTTP, backed by a file-key local CA."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from connectors.base import CAUnavailable, Issued, RevocationReason
from connectors.localca.connector import LocalCAConnector
from gateway.core.pkix import PkixService
from gateway.pkix.routes import PKIX_SERVICE, add_routes
from tests.pkix.localca_support import issue_request, ocsp_request_der, started_ca

DER = Encoding.DER
Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def ca(tmp_path: Path) -> AsyncIterator[LocalCAConnector]:
    connector = await started_ca(tmp_path)
    yield connector
    await connector.aclose()


async def _client(aiohttp_client: MakeClient, connectors: dict[str, object]) -> Client:
    app = web.Application()
    app[PKIX_SERVICE] = PkixService(connectors)
    add_routes(app)
    return await aiohttp_client(app)


async def _issue(ca: LocalCAConnector) -> tuple[x509.Certificate, x509.Certificate]:
    result = await ca.issue(issue_request())
    assert isinstance(result, Issued)
    return x509.load_der_x509_certificate(result.leaf_der), x509.load_der_x509_certificate(
        result.chain_der[0]
    )


async def _post(client: Client, der: bytes, ca: str = "test") -> ocsp.OCSPResponse:
    resp = await client.post(
        f"/pkix/{ca}/ocsp", data=der, headers={"Content-Type": "application/ocsp-request"}
    )
    assert resp.status == 200
    assert resp.content_type == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(await resp.read())


def _verify(resp: ocsp.OCSPResponse, signer: x509.Certificate) -> None:
    signer.public_key().verify(  # type: ignore[call-arg, union-attr]
        resp.signature, resp.tbs_response_bytes, ec.ECDSA(hashes.SHA256())
    )


async def test_crl_is_served_as_der(aiohttp_client: MakeClient, ca: LocalCAConnector) -> None:
    client = await _client(aiohttp_client, {"test": ca})
    leaf, issuer = await _issue(ca)
    await ca.revoke(leaf.public_bytes(DER), RevocationReason.SUPERSEDED)
    resp = await client.get("/pkix/test/crl")
    assert resp.status == 200 and resp.content_type == "application/pkix-crl"
    crl = x509.load_der_x509_crl(await resp.read())
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    assert crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]


async def test_root_crl_of_a_two_tier_ca_only(aiohttp_client: MakeClient, ca: LocalCAConnector,
                                              tmp_path: Path) -> None:
    single = await started_ca(tmp_path / "single", hierarchy="single")
    try:
        client = await _client(aiohttp_client, {"test": ca, "single": single})
        resp = await client.get("/pkix/test/root-crl")
        assert resp.status == 200 and resp.content_type == "application/pkix-crl"
        root = x509.load_der_x509_certificate((await ca.ca_certs())[-1])
        crl = x509.load_der_x509_crl(await resp.read())
        assert crl.issuer == root.subject and crl.is_signature_valid(root.public_key())  # type: ignore[arg-type]
        assert len(crl) == 0
        assert (await client.get("/pkix/single/root-crl")).status == 404
    finally:
        await single.aclose()


async def test_ocsp_good_then_revoked_with_nonce(
    aiohttp_client: MakeClient, ca: LocalCAConnector
) -> None:
    client = await _client(aiohttp_client, {"test": ca})
    leaf, issuer = await _issue(ca)
    good = await _post(client, ocsp_request_der(leaf, issuer, nonce=b"0123456789abcdef"))
    assert good.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert good.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert good.serial_number == leaf.serial_number
    assert (
        good.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"0123456789abcdef"
    )
    _verify(good, issuer)
    await ca.revoke(leaf.public_bytes(DER), RevocationReason.KEY_COMPROMISE)
    revoked = await _post(client, ocsp_request_der(leaf, issuer))
    assert revoked.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_reason == x509.ReasonFlags.key_compromise
    assert revoked.revocation_time_utc is not None


async def test_ocsp_get_form(aiohttp_client: MakeClient, ca: LocalCAConnector) -> None:
    client = await _client(aiohttp_client, {"test": ca})
    leaf, issuer = await _issue(ca)
    encoded = quote(base64.b64encode(ocsp_request_der(leaf, issuer)).decode(), safe="")
    resp = await client.get(f"/pkix/test/ocsp/{encoded}")
    assert resp.status == 200
    der = await resp.read()
    answer = ocsp.load_der_ocsp_response(der)
    assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    # RFC 5019 §6.2: cacheable up to nextUpdate (60 minutes by default), with validators
    assert answer.next_update_utc is not None
    cache = resp.headers["Cache-Control"]
    max_age = int(cache.split("max-age=")[1].split(",")[0])
    assert 3500 < max_age <= 3600 and "public" in cache and "must-revalidate" in cache
    assert parsedate_to_datetime(resp.headers["Expires"]) == \
        answer.next_update_utc.replace(microsecond=0)
    assert parsedate_to_datetime(resp.headers["Last-Modified"]) == \
        answer.this_update_utc.replace(microsecond=0)
    assert resp.headers["ETag"] == '"' + hashlib.sha1(der).hexdigest() + '"'


async def test_ocsp_unknown_for_other_issuer_and_unissued_serial(
    aiohttp_client: MakeClient, ca: LocalCAConnector, tmp_path: Path
) -> None:
    other = await started_ca(tmp_path / "other")
    try:
        foreign, foreign_issuer = await _issue(other)
    finally:
        await other.aclose()
    client = await _client(aiohttp_client, {"test": ca})
    answer = await _post(client, ocsp_request_der(foreign, foreign_issuer))
    assert answer.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    leaf, issuer = await _issue(ca)
    # Same issuer, a serial this CA never issued.
    req = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        ocsp_request_hashes(issuer)[0],
        ocsp_request_hashes(issuer)[1],
        leaf.serial_number + 1,
        hashes.SHA1(),
    )
    answer = await _post(client, req.build().public_bytes(DER))
    assert answer.certificate_status == ocsp.OCSPCertStatus.UNKNOWN


def ocsp_request_hashes(issuer: x509.Certificate) -> tuple[bytes, bytes]:
    """Issuer name and key hashes (SHA-1) as a CertID carries them."""
    probe = ocsp.load_der_ocsp_request(ocsp_request_der(issuer, issuer))
    return probe.issuer_name_hash, probe.issuer_key_hash


@pytest.mark.parametrize("body", [b"", b"not DER at all", b"\x30\x00"])
async def test_malformed_ocsp_requests(
    aiohttp_client: MakeClient, ca: LocalCAConnector, body: bytes
) -> None:
    client = await _client(aiohttp_client, {"test": ca})
    answer = await _post(client, body)
    assert answer.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    resp = await client.get("/pkix/test/ocsp/%%%not-base64")
    assert (
        ocsp.load_der_ocsp_response(await resp.read()).response_status
        == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    )
    assert resp.headers["Cache-Control"] == "no-store"  # never cache an error


async def test_wrong_media_type_and_unknown_ca(
    aiohttp_client: MakeClient, ca: LocalCAConnector
) -> None:
    client = await _client(aiohttp_client, {"test": ca, "adcs": object()})
    resp = await client.post("/pkix/test/ocsp", data=b"x", headers={"Content-Type": "text/plain"})
    assert resp.status == 415
    for path in ("/pkix/nope/crl", "/pkix/adcs/crl"):
        resp = await client.get(path)
        assert resp.status == 404
        assert "test" in await resp.text()  # names what is served


async def test_delegated_responder_signs_with_its_own_certificate(
    aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    ca = await started_ca(tmp_path, ocsp_responder="delegated")
    try:
        client = await _client(aiohttp_client, {"test": ca})
        leaf, issuer = await _issue(ca)
        answer = await _post(client, ocsp_request_der(leaf, issuer))
    finally:
        await ca.aclose()
    assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    (responder,) = answer.certificates
    responder.verify_directly_issued_by(issuer)
    assert (
        ExtendedKeyUsageOID.OCSP_SIGNING
        in responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    _verify(answer, responder)
    assert (
        answer.responder_key_hash
        == responder.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    )


class _DownPublisher:
    """A CA whose key cannot sign right now."""

    async def crl_der(self) -> bytes:
        raise CAUnavailable("the HSM failed; retry later")

    async def ocsp_response(self, request_der: bytes) -> bytes:
        raise CAUnavailable("the HSM failed; retry later")


async def test_unavailable_ca_answers_503_with_retry_after(aiohttp_client: MakeClient) -> None:
    client = await _client(aiohttp_client, {"down": _DownPublisher()})
    resp = await client.get("/pkix/down/crl")
    assert resp.status == 503 and resp.headers["Retry-After"] == "30"
    resp = await client.post(
        "/pkix/down/ocsp", data=b"x", headers={"Content-Type": "application/ocsp-request"}
    )
    assert resp.status == 503
