"""Admin HTTP API under /admin/, for approvers and tooling.

Routes (JSON):

* ``GET  /admin/approvals``               requests waiting for an approver
* ``POST /admin/approvals/{id}/approve``  body optional: ``{"approver": "alice"}``
* ``POST /admin/approvals/{id}/reject``   body: ``{"reason": "...", "approver": "alice"}``
* the certificate inventory and ACME accounts: see gateway.admin.inventory

Every request needs ``Authorization: Bearer <token>``, the token read from
``[admin] token_file`` or ``token_env``; without a configured token the API is
not mounted at all. A wrong token is answered 401 and audited. Like the other
front ends, this one parses the wire and makes one core call.
"""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import keys
from gateway.admin import inventory
from gateway.admin.request import json_body, operator
from gateway.core.approvals import actor_of
from gateway.core.models import Order
from gateway.errors import ErrorKind, GatewayError

_STATUS = {ErrorKind.NOT_FOUND: 404, ErrorKind.MALFORMED: 400, ErrorKind.CONFLICT: 409,
           ErrorKind.ALREADY_REVOKED: 409, ErrorKind.CA_UNAVAILABLE: 503,
           ErrorKind.SERVER_INTERNAL: 502}
TOKEN: web.AppKey[str] = web.AppKey("admin_token")


def _error(status: int, detail: str) -> web.Response:
    return web.json_response({"error": detail}, status=status)


@web.middleware
async def admin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer-token check, and GatewayErrors as JSON with a fitting status."""
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {request.app[TOKEN]}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        await request.config_dict[keys.CORE].audit.record(
            "unauthorized", actor=f"admin:{request.remote or '?'}", result="unauthorized",
            detail=f"admin API {request.method} {request.path} without a valid token")
        resp = _error(401, "a valid admin token is required (Authorization: Bearer ...)")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="acme-gateway admin"'
        return resp
    try:
        return await handler(request)
    except GatewayError as exc:
        return _error(_STATUS.get(exc.kind, 400), exc.detail)


def render_request(order: Order) -> dict[str, Any]:
    """A held request as the API shows it."""
    return {"id": order.id, "requester": actor_of(order), "profile": order.profile,
            "identifiers": [i.value for i in order.identifiers],
            "created": order.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "status": order.status, "approval": order.approval}


async def list_pending(request: web.Request) -> web.Response:
    """GET /admin/approvals."""
    pending = await request.config_dict[keys.CORE].approvals.pending()
    return web.json_response({"pending": [render_request(o) for o in pending]})


async def approve(request: web.Request) -> web.Response:
    """POST /admin/approvals/{id}/approve."""
    body = await json_body(request)
    order = await request.config_dict[keys.CORE].approvals.approve(
        request.match_info["id"], operator(body))
    return web.json_response(render_request(order))


async def reject(request: web.Request) -> web.Response:
    """POST /admin/approvals/{id}/reject with a reason."""
    body = await json_body(request)
    reason = body.get("reason")
    if not isinstance(reason, str):
        raise GatewayError(ErrorKind.MALFORMED, "reject needs {\"reason\": \"...\"}")
    order = await request.config_dict[keys.CORE].approvals.reject(
        request.match_info["id"], operator(body), reason)
    return web.json_response(render_request(order))


def admin_app(token: str) -> web.Application:
    """The admin routes (mounted by gateway.app under /admin/ when a token is configured)."""
    app = web.Application(middlewares=[admin_middleware])
    app[TOKEN] = token
    app.router.add_get("/approvals", list_pending)
    app.router.add_post("/approvals/{id}/approve", approve)
    app.router.add_post("/approvals/{id}/reject", reject)
    inventory.add_routes(app)
    return app
