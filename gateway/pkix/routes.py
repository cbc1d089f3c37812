"""Routes that publish CRLs (RFC 5280) and answer OCSP (RFC 6960) for the CAs we sign for.

``GET  /pkix/<ca>/crl``               the current CRL, ``application/pkix-crl`` (DER)
``GET  /pkix/<ca>/root-crl``          the CRL of a two-tier CA's offline root (DER)
``POST /pkix/<ca>/ocsp``              body ``application/ocsp-request`` (DER)
``GET  /pkix/<ca>/ocsp/<base64>``     the DER request, base64 then URL-encoded (RFC 6960 A.1);
                                      cacheable until the answer's nextUpdate (RFC 5019 §6.2)

Each handler parses the wire, makes one call into
:class:`gateway.core.pkix.PkixService` (under :data:`PKIX_SERVICE`) and renders
the bytes it returns. Malformed OCSP requests are answered by the responder
itself with ``malformedRequest``, as RFC 6960 asks.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import unquote

from aiohttp import web

from gateway.core.pkix import OcspAnswer, PkixService
from gateway.errors import ErrorKind, GatewayError
from gateway.keys import PKIX_SERVICE

__all__ = ["PKIX_SERVICE", "add_routes", "routes"]


CRL_TYPE = "application/pkix-crl"
OCSP_REQUEST_TYPE = "application/ocsp-request"
OCSP_RESPONSE_TYPE = "application/ocsp-response"
# An OCSP request for one certificate is ~100 bytes; a generous bound stops abuse.
MAX_OCSP_REQUEST = 16 * 1024

routes = web.RouteTableDef()


def add_routes(app: web.Application) -> None:
    """Register the /pkix routes on ``app`` (which must hold a PkixService under PKIX_SERVICE)."""
    app.router.add_routes(routes)


def _service(request: web.Request) -> PkixService:
    return request.app[PKIX_SERVICE]


def _failure(exc: GatewayError) -> web.Response:
    if exc.kind is ErrorKind.NOT_FOUND:
        return web.Response(status=404, text=exc.detail + "\n")
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return web.Response(status=503, text=exc.detail + "\n", headers=headers)


@routes.get("/pkix/{ca}/crl")
async def get_crl(request: web.Request) -> web.Response:
    """The CA's current CRL."""
    return await _crl(request, _service(request).crl, max_age=300)


@routes.get("/pkix/{ca}/root-crl")
async def get_root_crl(request: web.Request) -> web.Response:
    """The CRL of the CA's offline root (it changes only when the root signs it anew)."""
    return await _crl(request, _service(request).root_crl, max_age=3600)


async def _crl(request: web.Request, fetch: Callable[[str], Awaitable[bytes]],
               max_age: int) -> web.Response:
    try:
        der = await fetch(request.match_info["ca"])
    except GatewayError as exc:
        return _failure(exc)
    return web.Response(body=der, content_type=CRL_TYPE,
                        headers={"Cache-Control": f"max-age={max_age}"})


@routes.post("/pkix/{ca}/ocsp")
async def post_ocsp(request: web.Request) -> web.Response:
    """OCSP over POST: the DER request is the body."""
    if request.content_type != OCSP_REQUEST_TYPE:
        raise web.HTTPUnsupportedMediaType(text=f"send the OCSP request as {OCSP_REQUEST_TYPE}\n")
    if request.content_length is not None and request.content_length > MAX_OCSP_REQUEST:
        raise web.HTTPRequestEntityTooLarge(MAX_OCSP_REQUEST, request.content_length)
    body = await request.content.read(MAX_OCSP_REQUEST + 1)
    if len(body) > MAX_OCSP_REQUEST:
        raise web.HTTPRequestEntityTooLarge(MAX_OCSP_REQUEST, len(body))
    return await _answer(request, body)


@routes.get("/pkix/{ca}/ocsp/{encoded:.+}")
async def get_ocsp(request: web.Request) -> web.Response:
    """OCSP over GET: the DER request, base64 and URL-encoded, is the last path segment(s)."""
    # The raw path keeps %2F and %2B as sent; decode them ourselves.
    raw = request.raw_path.split("?", 1)[0]
    encoded = unquote(raw.split("/ocsp/", 1)[1])
    return await _answer(request, _decode_base64(encoded))


def _decode_base64(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional; b'' (→ malformedRequest) when invalid."""
    text = text.strip().replace(" ", "+")  # a '+' that a client left unescaped arrives as ' '
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return b""


async def _answer(request: web.Request, request_der: bytes) -> web.Response:
    try:
        answer = await _service(request).ocsp(request.match_info["ca"], request_der)
    except GatewayError as exc:
        return _failure(exc)
    headers = _cache_headers(answer) if request.method == "GET" else {}
    return web.Response(body=answer.der, content_type=OCSP_RESPONSE_TYPE, headers=headers)


def _cache_headers(answer: OcspAnswer) -> dict[str, str]:
    """RFC 5019 §6.2: GET answers are cacheable until nextUpdate, never beyond it."""
    if answer.this_update is None or answer.next_update is None:
        return {"Cache-Control": "no-store"}  # an error response must not be cached
    left = int((answer.next_update - datetime.now(UTC)).total_seconds())
    return {
        "Cache-Control": f"max-age={max(0, left)}, public, no-transform, must-revalidate",
        "Last-Modified": format_datetime(answer.this_update, usegmt=True),
        "Expires": format_datetime(answer.next_update, usegmt=True),
        "ETag": answer.etag,
    }
