"""The ACME sub-application: routes and the middleware that every response passes."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import jsontext, keys
from gateway.acme import handlers as h
from gateway.acme import problems
from gateway.acme.post import MAX_BODY, config, urls_for
from gateway.bodies import too_large, within_limit
from gateway.errors import ErrorKind, GatewayError

log = logging.getLogger("gateway.acme")

_HTTP_KINDS = {404: ErrorKind.NOT_FOUND, 405: ErrorKind.METHOD_NOT_ALLOWED,
               408: ErrorKind.REQUEST_TIMEOUT, 415: ErrorKind.UNSUPPORTED_MEDIA_TYPE,
               429: ErrorKind.RATE_LIMITED}


def problem_response(err: GatewayError) -> web.Response:
    """An RFC 7807 problem document response."""
    status, doc = problems.from_error(err)
    resp = web.json_response(doc, status=status, content_type=problems.PROBLEM_JSON,
                             dumps=jsontext.compact)
    if err.retry_after is not None:
        resp.headers["Retry-After"] = str(err.retry_after)
    if err.location:
        resp.headers["Location"] = err.location
    return resp


@web.middleware
async def acme_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Problem documents for every failure; Replay-Nonce and Link: index on every answer."""
    try:
        config(request)[keys.CORE].limits.admit_request()
        resp = await handler(within_limit(request, MAX_BODY))
    except GatewayError as exc:
        resp = problem_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        resp = problem_response(http_refusal(exc))
    except Exception:  # never a traceback to a client: log it, answer serverInternal
        log.exception("unhandled error in %s %s", request.method, request.path)
        resp = problem_response(GatewayError(ErrorKind.SERVER_INTERNAL,
                                             "internal error; the gateway log has details"))
    return with_acme_headers(request, resp)


def with_acme_headers(request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
    """Replay-Nonce and Link: index, which every ACME answer carries (RFC 8555 §6.5, §7.1)."""
    resp.headers["Replay-Nonce"] = config(request)[keys.NONCES].new()
    resp.headers.add("Link", f'<{urls_for(request).directory}>;rel="index"')
    if request.method == "POST":
        resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def http_refusal(exc: web.HTTPException) -> GatewayError:
    """aiohttp's own refusal (no route, wrong method, body too large ...) as a GatewayError."""
    if exc.status == 413:
        return too_large(MAX_BODY)
    kind = _HTTP_KINDS.get(exc.status)
    if kind is None:
        kind = ErrorKind.SERVER_INTERNAL if exc.status >= 500 else ErrorKind.MALFORMED
    detail = exc.reason or "request refused"
    if exc.status == 405:
        detail = f"{detail}; this resource accepts {exc.headers.get('Allow', 'other methods')}"
    return GatewayError(kind, detail)


def acme_refusal(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    """A refusal of a path under /acme that no ACME route matched, as a problem document."""
    return with_acme_headers(request, problem_response(http_refusal(exc)))


def acme_app() -> web.Application:
    """The ACME routes under /acme/ (mounted by gateway.app)."""
    app = web.Application(middlewares=[acme_middleware])
    app.router.add_get("/directory", h.directory)
    app.router.add_get("/renewal-info/{cert_id}", h.renewal_info)
    app.router.add_route("HEAD", "/new-nonce", h.new_nonce)
    app.router.add_get("/new-nonce", h.new_nonce, allow_head=False)
    app.router.add_post("/new-account", h.new_account)
    app.router.add_post("/acct/{id}", h.account)
    app.router.add_post("/acct/{id}/orders", h.account_orders)
    app.router.add_post("/key-change", h.key_change)
    app.router.add_post("/new-order", h.new_order)
    app.router.add_post("/order/{id}", h.order)
    app.router.add_post("/order/{id}/finalize", h.finalize)
    app.router.add_post("/authz/{id}", h.authz)
    app.router.add_post("/chall/{id}", h.challenge)
    app.router.add_post("/cert/{id}", h.certificate)
    app.router.add_post("/cert/{id}/{chain}", h.certificate)
    app.router.add_post("/revoke-cert", h.revoke_cert)
    return app
