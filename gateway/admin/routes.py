"""Admin HTTP API under /admin/, for approvers and tooling.

Routes (JSON):

* ``GET  /admin/approvals``               requests waiting for an approver
* ``POST /admin/approvals/{id}/approve``  body optional: ``{"approver": "alice"}``
* ``POST /admin/approvals/{id}/reject``   body: ``{"reason": "...", "approver": "alice"}``
* ``GET  /admin/tasks``                   open operator tasks (e.g. revoke in the AD CS console)
* ``POST /admin/tasks/{id}/done``         body optional: ``{"approver": "alice", "note": "..."}``
* ``GET  /admin/renewals``                live certificates and their renewal windows;
  ``?due=1``: only those due now; ``?est=1``: only EST devices (which must re-enroll)
* ``POST /admin/scep/{label}/otp``        a one-time SCEP password (:mod:`gateway.admin.scep`)

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
from gateway.admin import scep
from gateway.core.approvals import actor_of
from gateway.errors import ErrorKind, GatewayError
from gateway.model.records import Order

_STATUS = {ErrorKind.NOT_FOUND: 404, ErrorKind.MALFORMED: 400, ErrorKind.CONFLICT: 409}
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


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise GatewayError(ErrorKind.MALFORMED, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise GatewayError(ErrorKind.MALFORMED, "the body must be a JSON object")
    return body


def _approver(request: web.Request, body: dict[str, Any]) -> str:
    name = body.get("approver")
    return f"admin:{name}" if isinstance(name, str) and name else "admin:api"


async def list_pending(request: web.Request) -> web.Response:
    """GET /admin/approvals."""
    pending = await request.config_dict[keys.CORE].approvals.pending()
    return web.json_response({"pending": [render_request(o) for o in pending]})


async def approve(request: web.Request) -> web.Response:
    """POST /admin/approvals/{id}/approve."""
    body = await _body(request)
    order = await request.config_dict[keys.CORE].approvals.approve(
        request.match_info["id"], _approver(request, body))
    return web.json_response(render_request(order))


async def reject(request: web.Request) -> web.Response:
    """POST /admin/approvals/{id}/reject with a reason."""
    body = await _body(request)
    reason = body.get("reason")
    if not isinstance(reason, str):
        raise GatewayError(ErrorKind.MALFORMED, "reject needs {\"reason\": \"...\"}")
    order = await request.config_dict[keys.CORE].approvals.reject(
        request.match_info["id"], _approver(request, body), reason)
    return web.json_response(render_request(order))


async def list_tasks(request: web.Request) -> web.Response:
    """GET /admin/tasks."""
    tasks = await request.config_dict[keys.CORE].issuance.tasks.open_tasks()
    return web.json_response({"tasks": [t.as_dict() for t in tasks]})


async def task_done(request: web.Request) -> web.Response:
    """POST /admin/tasks/{id}/done."""
    body = await _body(request)
    note = body.get("note")
    note = note if isinstance(note, str) else ""
    task = await request.config_dict[keys.CORE].issuance.tasks.done(
        request.match_info["id"], _approver(request, body), note)
    return web.json_response(task.as_dict())


async def renewals(request: web.Request) -> web.Response:
    """GET /admin/renewals[?due=1][&est=1]."""
    flags = {name: request.query.get(name, "") in ("1", "true", "yes") for name in ("due", "est")}
    items = await request.config_dict[keys.CORE].renewals.schedule(
        due_only=flags["due"], est_only=flags["est"])
    return web.json_response({"certificates": [i.summary() for i in items]})


def admin_app(token: str) -> web.Application:
    """The admin routes (mounted by gateway.app under /admin/ when a token is configured)."""
    app = web.Application(middlewares=[admin_middleware])
    app[TOKEN] = token
    app.router.add_get("/approvals", list_pending)
    app.router.add_post("/approvals/{id}/approve", approve)
    app.router.add_post("/approvals/{id}/reject", reject)
    app.router.add_get("/tasks", list_tasks)
    app.router.add_post("/tasks/{id}/done", task_done)
    app.router.add_get("/renewals", renewals)
    app.router.add_post("/scep/{label}/otp", scep_otp)
    return app


async def scep_otp(request: web.Request) -> web.Response:
    """POST /admin/scep/{label}/otp."""
    return await scep.issue_otp(request, await _body(request))
