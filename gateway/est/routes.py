"""The EST sub-application under /.well-known/est/ and the middleware every answer passes.

Routes (each also under ``/<label>/``; the bare path serves the default label):
``GET cacerts``, ``GET csrattrs``, ``POST simpleenroll``, ``POST simplereenroll``,
``POST serverkeygen``, ``POST fullcmc`` (501).

Every failure is a 4xx/5xx with a one-line text/plain reason, never a traceback.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.bodies import too_large
from gateway.config import Settings
from gateway.errors import ErrorKind, GatewayError
from gateway.est import handlers as h
from gateway.est import wire
from gateway.est.auth import AuthRequired
from gateway.est.settings import OPERATIONS, parse
from gateway.textfront import answer_in_text

STATUS = {
    ErrorKind.UNAUTHORIZED: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.METHOD_NOT_ALLOWED: 405,
    ErrorKind.REQUEST_TIMEOUT: 408,
    ErrorKind.PAYLOAD_TOO_LARGE: 413,
    ErrorKind.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.SERVER_INTERNAL: 500,
    ErrorKind.CA_UNAVAILABLE: 503,
}
# Header names aiohttp adds that EST clients never need (small header blocks for devices).
_DROPPED_HEADERS = ("Server",)


def error_response(request: web.Request, err: GatewayError) -> web.Response:
    """The status and one-line reason of a core refusal (policy text is shared with ACME)."""
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else None
    return wire.text_response(STATUS.get(err.kind, 400), err.detail, headers)


@web.middleware
async def est_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a one-line text answer."""
    try:
        return await answer_in_text(
            request, handler, wire.MAX_BODY, refusal=lambda exc: error_response(request, exc),
            http_error=http_error, internal_error=_internal_error, let_through=(AuthRequired,))
    except AuthRequired as exc:
        realm = request.app[h.EST_SETTINGS].realm
        return wire.text_response(401, exc.reason,
                                  {"WWW-Authenticate": f'Basic realm="{realm}"'})


def _internal_error() -> web.Response:
    return wire.text_response(500, "internal error; the gateway log has details")


def http_error(exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusals (no route, wrong method, body too large) as one-line reasons."""
    if exc.status == 404:
        return wire.text_response(404, "no such EST resource; the operations are "
                                  + ", ".join(OPERATIONS))
    allow = exc.headers.get("Allow")
    if exc.status == 405 and allow:
        return wire.text_response(405, f"this EST operation accepts {allow} only",
                                  {"Allow": allow})
    if exc.status == 413:
        return wire.text_response(413, too_large(wire.MAX_BODY).detail)
    return wire.text_response(exc.status, exc.reason or "request refused")


async def _trim_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name in _DROPPED_HEADERS:
        response.headers.popall(name, None)


def est_app(settings: Settings) -> web.Application:
    """The EST routes (mounted at /.well-known/est/ by gateway.app)."""
    app = web.Application(middlewares=[est_middleware])
    app[h.EST_SETTINGS] = parse(settings)
    app.on_response_prepare.append(_trim_headers)
    ops = (("GET", "cacerts", h.cacerts), ("GET", "csrattrs", h.csrattrs),
           ("POST", "simpleenroll", h.simpleenroll), ("POST", "simplereenroll", h.simplereenroll),
           ("POST", "serverkeygen", h.serverkeygen), ("POST", "fullcmc", h.fullcmc))
    for method, name, handler in ops:
        for path in (f"/{name}", f"/{{label}}/{name}"):
            if method == "GET":  # HEAD too, as RFC 9110 §9.3.2 asks of every GET resource
                app.router.add_get(path, handler)
            else:
                app.router.add_route(method, path, handler)
    return app
