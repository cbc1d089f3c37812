"""The web console's login and its forms (POST): approve, reject, revoke, deactivate.

Every form carries the session's CSRF token (checked by the admin app's
middleware before any handler runs); each action is one core call, audited
with the operator as ``admin:<name>``, then a redirect (303) to a page that
says what was done.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from gateway import keys
from gateway.admin.html import e, page, redirect
from gateway.admin.session import COOKIE, OPERATOR
from gateway.errors import ErrorKind, GatewayError

MAX_FORM = 4096


def login_form(error: str = "", status: int = 200) -> web.Response:
    """The login page (no session yet)."""
    shown = f'<p class="error">{e(error)}</p>' if error else ""
    body = (f'{shown}<form method="post" action="/admin/login">'
            '<p><label>Admin token <input name="token" type="password" required '
            'autocomplete="current-password" size="40"></label></p>'
            '<p><label>Your name (recorded in the audit trail) <input name="operator" '
            'required pattern="[A-Za-z0-9._@-]{1,64}" maxlength="64"></label></p>'
            "<p><button>Log in</button></p></form>")
    return page("Log in", body, status=status)


async def login_page(request: web.Request) -> web.Response:
    """GET /admin/login."""
    return login_form()


async def read_form(request: web.Request) -> dict[str, str]:
    """A console form's fields; anything but a small URL-encoded form is refused."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise GatewayError(ErrorKind.MALFORMED, "console forms are sent as "
                           "application/x-www-form-urlencoded")
    if (request.content_length or 0) > MAX_FORM:
        raise GatewayError(ErrorKind.MALFORMED, "the form is too large")
    try:
        form = await request.post()  # aiohttp keeps it: the handler reads it again for free
    except ValueError:
        raise GatewayError(ErrorKind.MALFORMED, "the form cannot be read") from None
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def login(request: web.Request) -> web.StreamResponse:
    """POST /admin/login: the admin token and a name → a session cookie."""
    form = await read_form(request)
    sessions = request.app[keys.CONSOLE_SESSIONS]
    operator = form.get("operator", "")
    if not sessions.token_matches(form.get("token", "")):
        await request.config_dict[keys.CORE].audit.record(
            "unauthorized", actor=f"admin:{request.remote or '?'}", result="unauthorized",
            detail="console login with a wrong admin token")
        return login_form("That is not the admin token.", 401)
    if not OPERATOR.fullmatch(operator):
        return login_form("A name is letters, digits and . _ @ - (at most 64).", 400)
    session = sessions.issue(operator)
    resp = redirect("/admin/")
    resp.set_cookie(COOKIE, session.cookie, path="/admin/", httponly=True, secure=True,
                    samesite="Strict", max_age=sessions.lifetime_seconds)
    return resp


async def logout(request: web.Request) -> web.StreamResponse:
    """POST /admin/console/logout."""
    resp = redirect("/admin/login")
    resp.del_cookie(COOKIE, path="/admin/")
    return resp


def _done(location: str, code: str) -> web.Response:
    # A code, not text: a crafted link cannot make the console say something else.
    return redirect(f"{location}?done={quote(code)}")


def _actor(request: web.Request) -> str:
    return f"admin:{request[keys.CONSOLE_SESSION].operator}"


async def approve(request: web.Request) -> web.StreamResponse:
    """POST /admin/console/approvals/{id}/approve."""
    await request.config_dict[keys.CORE].approvals.approve(request.match_info["id"],
                                                          _actor(request))
    return _done("/admin/console/approvals", "approved")


async def reject(request: web.Request) -> web.StreamResponse:
    """POST /admin/console/approvals/{id}/reject with a reason."""
    reason = (await read_form(request)).get("reason", "").strip()
    if not reason:
        raise GatewayError(ErrorKind.MALFORMED, "a rejection needs a reason for the requester")
    await request.config_dict[keys.CORE].approvals.reject(
        request.match_info["id"], _actor(request), reason[:200])
    return _done("/admin/console/approvals", "rejected")


def _confirmed(form: dict[str, str]) -> None:
    if form.get("confirm") != "yes":
        raise GatewayError(ErrorKind.MALFORMED, "this cannot be undone: tick the box to confirm")


async def revoke(request: web.Request) -> web.StreamResponse:
    """POST /admin/console/certificates/{ref}/revoke with a reason name."""
    form = await read_form(request)
    _confirmed(form)
    reason = form.get("reason", "unspecified")
    issued = await request.config_dict[keys.CORE].inventory.revoke(
        request.match_info["ref"], reason, _actor(request))
    return _done(f"/admin/console/certificates/{issued.certificate.id}", "revoked")


async def deactivate(request: web.Request) -> web.StreamResponse:
    """POST /admin/console/accounts/{id}/deactivate."""
    _confirmed(await read_form(request))
    await request.config_dict[keys.CORE].inventory.deactivate_account(
        request.match_info["id"], _actor(request))
    return _done("/admin/console/accounts", "deactivated")
