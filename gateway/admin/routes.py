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
from gateway.admin import console, console_actions, html, inventory, scep
from gateway.admin import session as session_cookie
from gateway.admin.request import json_body, operator
from gateway.core.approvals import actor_of
from gateway.errors import ErrorKind, GatewayError
from gateway.model.records import Order

_STATUS = {ErrorKind.NOT_FOUND: 404, ErrorKind.MALFORMED: 400, ErrorKind.CONFLICT: 409,
           ErrorKind.ALREADY_REVOKED: 409, ErrorKind.CA_UNAVAILABLE: 503,
           ErrorKind.SERVER_INTERNAL: 502}
TOKEN: web.AppKey[str] = web.AppKey("admin_token")


def _error(status: int, detail: str) -> web.Response:
    return web.json_response({"error": detail}, status=status)


@web.middleware
async def admin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Console pages behind a session cookie; the JSON API behind the bearer token."""
    if is_console(request.path):
        return await console_guard(request, handler)
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {request.app[TOKEN]}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        await _refused(request, f"admin API {request.method} {request.path} without a valid "
                                "token")
        resp = _error(401, "a valid admin token is required (Authorization: Bearer ...)")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="acme-gateway admin"'
        return resp
    try:
        return await handler(request)
    except GatewayError as exc:
        return _error(_STATUS.get(exc.kind, 400), exc.detail)


async def _refused(request: web.Request, detail: str) -> None:
    await request.config_dict[keys.CORE].audit.record(
        "unauthorized", actor=f"admin:{request.remote or '?'}", result="unauthorized",
        detail=detail)


def is_console(path: str) -> bool:
    """Whether a path is one of the console's HTML pages or forms."""
    return path in ("/admin/", "/admin/login") or path.startswith("/admin/console/")


async def console_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A valid session (else the login page), a CSRF token on every POST, HTML errors."""
    try:
        if request.path != "/admin/login":
            refusal = await _console_session(request)
            if refusal is not None:
                return refusal
        return await handler(request)
    except GatewayError as exc:
        status = _STATUS.get(exc.kind, 400)
        text = f'<p class="error">{html.e(exc.detail)}</p>'
        if keys.CONSOLE_CSRF not in request:
            return html.page("Refused", text, status=status)
        return html.page("Refused", text, csrf=request[keys.CONSOLE_CSRF], status=status,
                         operator=request[keys.CONSOLE_SESSION].operator)


async def _console_session(request: web.Request) -> web.StreamResponse | None:
    sessions = request.app[keys.CONSOLE_SESSIONS]
    session = sessions.check(request.cookies.get(session_cookie.COOKIE, ""))
    if session is None:
        if request.method == "GET":
            return html.redirect("/admin/login")
        await _refused(request, f"console {request.method} {request.path} without a session")
        return html.page("Log in again", '<p class="error">Your session has ended. '
                         '<a href="/admin/login">Log in</a></p>', status=403)
    if request.method == "POST":
        token = (await console_actions.read_form(request)).get("csrf", "")
        if not sessions.csrf_matches(session, token):
            await _refused(request, f"console {request.path} without its form token (CSRF)")
            return html.page("Refused", '<p class="error">This form is not from this '
                             "console (or it is stale): reload the page and try again.</p>",
                             status=403)
    request[keys.CONSOLE_SESSION] = session
    request[keys.CONSOLE_CSRF] = sessions.csrf(session)
    return None


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


async def list_tasks(request: web.Request) -> web.Response:
    """GET /admin/tasks."""
    tasks = await request.config_dict[keys.CORE].issuance.tasks.open_tasks()
    return web.json_response({"tasks": [t.as_dict() for t in tasks]})


async def task_done(request: web.Request) -> web.Response:
    """POST /admin/tasks/{id}/done."""
    body = await json_body(request)
    note = body.get("note")
    note = note if isinstance(note, str) else ""
    task = await request.config_dict[keys.CORE].issuance.tasks.done(
        request.match_info["id"], operator(body), note)
    return web.json_response(task.as_dict())


async def renewals(request: web.Request) -> web.Response:
    """GET /admin/renewals[?due=1][&est=1]."""
    flags = {name: request.query.get(name, "") in ("1", "true", "yes") for name in ("due", "est")}
    items = await request.config_dict[keys.CORE].renewals.schedule(
        due_only=flags["due"], est_only=flags["est"])
    return web.json_response({"certificates": [i.summary() for i in items]})


def admin_app(token: str, est: dict[str, list[dict[str, str]]] | None = None) -> web.Application:
    """The admin routes (mounted by gateway.app under /admin/ when a token is configured).

    ``est``: the EST labels and users the console lists (gateway.app.est_overview).
    """
    app = web.Application(middlewares=[admin_middleware])
    app[TOKEN] = token
    app[keys.CONSOLE_EST] = est or {"labels": [], "users": []}
    app[keys.CONSOLE_SESSIONS] = session_cookie.ConsoleSessions(token)
    app.router.add_get("/approvals", list_pending)
    app.router.add_post("/approvals/{id}/approve", approve)
    app.router.add_post("/approvals/{id}/reject", reject)
    app.router.add_get("/tasks", list_tasks)
    app.router.add_post("/tasks/{id}/done", task_done)
    app.router.add_get("/renewals", renewals)
    app.router.add_post("/scep/{label}/otp", scep_otp)
    inventory.add_routes(app)
    _add_console_routes(app)
    return app


async def scep_otp(request: web.Request) -> web.Response:
    """POST /admin/scep/{label}/otp."""
    return await scep.issue_otp(request, await json_body(request))


def _add_console_routes(app: web.Application) -> None:
    app.router.add_get("/", console.overview)
    app.router.add_get("/login", console_actions.login_page)
    app.router.add_post("/login", console_actions.login)
    app.router.add_post("/console/logout", console_actions.logout)
    pages = (("approvals", console.approvals), ("certificates", console.certificates),
             ("certificates/{ref}", console.certificate), ("accounts", console.accounts),
             ("audit", console.audit), ("compliance", console.compliance), ("est", console.est),
             ("compliance.csv", console.compliance_csv))
    for path, page in pages:
        app.router.add_get(f"/console/{path}", page)
    app.router.add_post("/console/approvals/{id}/approve", console_actions.approve)
    app.router.add_post("/console/approvals/{id}/reject", console_actions.reject)
    app.router.add_post("/console/certificates/{ref}/revoke", console_actions.revoke)
    app.router.add_post("/console/accounts/{id}/deactivate", console_actions.deactivate)
