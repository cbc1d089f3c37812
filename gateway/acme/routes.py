"""The ACME routes, and the wrapping every ACME answer passes through.

The routes sit on the gateway's own router under /acme/ rather than on a
sub-application: a sub-application costs every request a second route lookup
and two more middleware layers. :func:`answer` is what the sub-application's
middleware was; gateway.app's request middleware calls it for every path under
/acme/, so refusals aiohttp raises there (no route, wrong method) are problem
documents too.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import jsontext, keys
from gateway.acme import handlers as h
from gateway.acme import problems
from gateway.acme.post import MAX_BODY, Answering, answering, begin_answer, end_answer
from gateway.acme.render import PREFIX
from gateway.bodies import too_large, within_limit
from gateway.errors import ErrorKind, GatewayError

log = logging.getLogger("gateway.acme")

_HTTP_KINDS = {404: ErrorKind.NOT_FOUND, 405: ErrorKind.METHOD_NOT_ALLOWED,
               408: ErrorKind.REQUEST_TIMEOUT, 415: ErrorKind.UNSUPPORTED_MEDIA_TYPE,
               429: ErrorKind.RATE_LIMITED}

# (method, path under /acme, handler); GET routes answer HEAD too unless listed apart.
_ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/directory", h.directory),
    ("GET", "/renewal-info/{cert_id}", h.renewal_info),
    ("HEAD", "/new-nonce", h.new_nonce),
    ("GET", "/new-nonce", h.new_nonce),
    ("POST", "/new-account", h.new_account),
    ("POST", "/acct/{id}", h.account),
    ("POST", "/acct/{id}/orders", h.account_orders),
    ("POST", "/key-change", h.key_change),
    ("POST", "/new-order", h.new_order),
    ("POST", "/order/{id}", h.order),
    ("POST", "/order/{id}/finalize", h.finalize),
    ("POST", "/authz/{id}", h.authz),
    ("POST", "/chall/{id}", h.challenge),
    ("POST", "/cert/{id}", h.certificate),
    ("POST", "/cert/{id}/{chain}", h.certificate),
    ("POST", "/revoke-cert", h.revoke_cert),
)
_OWN_HEAD = frozenset(path for method, path, _ in _ROUTES if method == "HEAD")


def add_routes(app: web.Application) -> None:
    """Put the ACME routes under /acme/ on ``app``'s router."""
    for method, path, handler in _ROUTES:
        if method == "GET":
            app.router.add_get(PREFIX + path, handler, allow_head=path not in _OWN_HEAD)
        else:
            app.router.add_route(method, PREFIX + path, handler)


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


async def answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run an ACME handler: problem documents for every failure; Replay-Nonce and Link:
    index on every answer."""
    current, token = begin_answer(request)
    try:
        try:
            current.app[keys.CORE].limits.admit_request()
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
        return _with_acme_headers(current, resp)
    finally:
        end_answer(token)


def with_acme_headers(request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
    """Replay-Nonce and Link: index, which every ACME answer carries (RFC 8555 §6.5, §7.1)."""
    return _with_acme_headers(answering(request), resp)


def _with_acme_headers(current: Answering, resp: web.StreamResponse) -> web.StreamResponse:
    headers = resp.headers
    headers["Replay-Nonce"] = current.nonces.new()
    headers.add("Link", current.urls.index_link)
    if current.request.method == "POST":
        headers.setdefault("Cache-Control", "no-store")
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
