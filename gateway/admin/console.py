"""The web console's pages (GET): overview, approvals, certificates, accounts, audit, compliance.

Each page makes core calls and renders HTML with every value escaped
(gateway.admin.html). Forms post to gateway.admin.console_actions with the
session's CSRF token. Authentication is the admin app's middleware.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from gateway import keys
from gateway.admin import render
from gateway.admin.html import bars, e, hidden, page, table
from gateway.admin.query import certificate_query, period
from gateway.core.approvals import actor_of
from gateway.core.inventory import IssuedCertificate
from gateway.core.revocation import REASON_NAMES
from gateway.errors import GatewayError
from gateway.model.records import CertificateQuery

CHART_DAYS = 30
# Revocation and deactivation cannot be undone: the browser asks for this box first
# (no script needed), and the server refuses the form without it.
CONFIRM = ('<label><input type="checkbox" name="confirm" value="yes" required> '
           "cannot be undone</label>")


# What a page says after a form was done (the redirect carries the code only).
NOTICES = {"approved": "The request was approved; it goes to its CA now.",
           "rejected": "The request was rejected; the requester sees your reason.",
           "revoked": "The certificate was revoked at its CA.",
           "deactivated": "The account was deactivated."}


def _page(request: web.Request, title: str, body: str, status: int = 200) -> web.Response:
    notice = NOTICES.get(request.query.get("done", ""), "")
    shown = f'<p class="notice">{e(notice)}</p>' if notice else ""
    return page(title, shown + body, csrf=request[keys.CONSOLE_CSRF], status=status,
                operator=request[keys.CONSOLE_SESSION].operator)


def _day(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")


def _per_day(days: list[str], found: list[IssuedCertificate],
             issued: bool) -> list[tuple[str, int]]:
    counts = Counter(_day(i.certificate.not_before if issued else i.certificate.not_after)
                     for i in found)
    return [(d, counts.get(d, 0)) for d in days]


def _health_cell(state: dict[str, Any]) -> str:
    """"up", or "down since ..." with the last error, as one table cell."""
    if state["state"] == "up":
        return '<span class="ok">up</span>'
    since = f" since {state['down_since']}" if state["down_since"] else ""
    why = f": {state['last_error']}" if state["last_error"] else ""
    return f'<span class="bad">{e("down" + since + why)}</span>'


async def overview(request: web.Request) -> web.Response:
    """GET /admin/: CA health, what waits, what expires, issuance and expiry charts."""
    core = request.config_dict[keys.CORE]
    now = core.clock.now()
    health = core.ready()
    jobs = await core.inventory.jobs_waiting()
    expiring = await core.inventory.expiring_soon()
    cards = [("waiting for approval", jobs["approval"], "/admin/console/approvals"),
             ("waiting for a CA", jobs["waiting"], ""),
             *((f"expire within {d} days", n, "/admin/console/certificates?state=valid&"
                f"expires_within_days={d}") for d, n in expiring.items())]
    html = "".join(f'<a class="card" href="{e(link)}"><b>{n}</b>{e(text)}</a>' if link else
                   f'<span class="card"><b>{n}</b>{e(text)}</span>' for text, n, link in cards)
    rows = [(e(name), _health_cell(state)) for name, state in sorted(health.items())]
    recent = await core.inventory.find(CertificateQuery(limit=1000))
    ahead = await core.inventory.find(CertificateQuery(
        expires_after=now, expires_before=now + timedelta(days=CHART_DAYS), state="valid",
        limit=1000))
    past = [_day(now - timedelta(days=CHART_DAYS - 1 - i)) for i in range(CHART_DAYS)]
    future = [_day(now + timedelta(days=i)) for i in range(CHART_DAYS)]
    charts = (bars("Certificates issued per day (newest 1000)", _per_day(past, recent, True))
              + bars(f"Certificates expiring per day, next {CHART_DAYS} days",
                     _per_day(future, ahead, False)))
    body = (f"<section>{html}</section><h2>Certificate authorities</h2>"
            f"{table(['CA', 'health'], rows, 'no CA configured')}<h2>Activity</h2>{charts}")
    return _page(request, "Overview", body)


async def approvals(request: web.Request) -> web.Response:
    """GET /admin/console/approvals: held requests, each with approve and reject forms."""
    pending = await request.config_dict[keys.CORE].approvals.pending()
    csrf = hidden(request[keys.CONSOLE_CSRF])

    def actions(order_id: str) -> str:
        url = f"/admin/console/approvals/{e(order_id)}"
        return (f'<form class="inline" method="post" action="{url}/approve">{csrf}'
                f'<button name="approve">Approve</button></form> '
                f'<form class="inline" method="post" action="{url}/reject">{csrf}'
                f'<input name="reason" required maxlength="200" placeholder="reason">'
                f'<button name="reject">Reject</button></form>')

    rows = [(e(o.id), e(o.created_at.strftime("%Y-%m-%d %H:%M:%S")), e(o.profile),
             e(actor_of(o)), e(", ".join(i.value for i in o.identifiers)), actions(o.id))
            for o in pending]
    body = table(["request", "since", "profile", "requester", "names", "decision"], rows,
                 "no request is waiting for an approver")
    return _page(request, "Approvals", body)


def _search_form(params: dict[str, str]) -> str:
    fields = [("name", "name"), ("serial", "serial"), ("account", "requester / account"),
              ("profile", "profile"), ("ca", "CA"), ("expires_within_days", "expires within days")]
    inputs = "".join(f'<label>{e(label)} <input name="{key}" value="{e(params.get(key, ""))}" '
                     f'maxlength="255" size="14"></label> ' for key, label in fields)
    states = "".join(f'<option{" selected" if params.get("state") == s else ""}>{s}</option>'
                     for s in ("", "valid", "revoked", "expired"))
    return (f'<form method="get">{inputs}<label>state <select name="state">{states}</select>'
            f'</label> <button>Search</button></form>')


async def certificates(request: web.Request) -> web.Response:
    """GET /admin/console/certificates: the search form and its results."""
    core = request.config_dict[keys.CORE]
    params = {k: v for k, v in request.query.items() if v and k != "done"}
    try:
        found = await core.inventory.find(certificate_query(params, core.clock.now()))
        error = ""
    except GatewayError as exc:
        found, error = [], f'<p class="error">{e(exc.detail)}</p>'
    rows = []
    for issued in found:
        c = render.certificate(issued)
        link = f'<a href="/admin/console/certificates/{e(c["id"])}">{e(c["serial"])}</a>'
        rows.append((link, e(c["state"]), e(", ".join(c["names"])), e(c["profile"]),
                     e(c["ca"]), e(c["requester"]), e(c["not_after"])))
    body = _search_form(params) + error + table(
        ["serial", "state", "names", "profile", "CA", "requester", "not after"], rows,
        "no certificate matches")
    return _page(request, "Certificates", body, 400 if error else 200)


async def certificate(request: web.Request) -> web.Response:
    """GET /admin/console/certificates/{ref}: facts, revoke form, chain, audit history."""
    record = await request.config_dict[keys.CORE].inventory.record(request.match_info["ref"])
    c = render.certificate_record(record)
    facts = [(e(k.replace("_", " ")), e(", ".join(v) if isinstance(v, list) else v))
             for k, v in c.items() if k not in ("history", "chain_pem")]
    reasons = "".join(f"<option>{e(r)}</option>" for r in REASON_NAMES)
    revoke = "" if c["state"] == "revoked" else (
        f'<h2>Revoke</h2><form method="post" action="/admin/console/certificates/'
        f'{e(c["id"])}/revoke">{hidden(request[keys.CONSOLE_CSRF])}'
        f'<select name="reason">{reasons}</select>'
        f" {CONFIRM} <button name=\"revoke\">Revoke</button></form>")
    history = [(e(h["at"]), e(h["event"]), e(h["actor"]), e(h["result"]), e(h["detail"]))
               for h in c["history"]]
    body = (table(["", ""], facts) + revoke + "<h2>History</h2>"
            + table(["at", "event", "actor", "result", "detail"], history)
            + f"<h2>Chain</h2><pre>{e(c['chain_pem'])}</pre>")
    return _page(request, f"Certificate {c['serial']}", body)


async def accounts(request: web.Request) -> web.Response:
    """GET /admin/console/accounts: ACME accounts (with deactivate) and EAB keys."""
    core = request.config_dict[keys.CORE]
    csrf = hidden(request[keys.CONSOLE_CSRF])
    rows = []
    for acct in map(render.account, await core.inventory.accounts(limit=1000)):
        action = "" if acct["status"] != "valid" else (
            f'<form class="inline" method="post" action="/admin/console/accounts/'
            f'{e(acct["id"])}/deactivate">{csrf}{CONFIRM} '
            f'<button name="deactivate">Deactivate</button>'
            f"</form>")
        link = f'<a href="/admin/console/certificates?account={e(acct["id"])}">{e(acct["id"])}</a>'
        rows.append((link, e(acct["status"]), e(acct["created"]), e(", ".join(acct["contact"])),
                     e(acct["eab_kid"]), action))
    keys_ = [(e(k.id), e(k.status), e(k.uses), e(", ".join(k.profiles) or "all"),
              e(", ".join(k.allowed_domains) or "any"), e(k.note))
             for k in await core.eab.list_keys()]
    body = (table(["account", "status", "created", "contact", "EAB key", ""], rows,
                  "no ACME account") + "<h2>External Account Binding keys</h2>"
            + table(["key id", "status", "uses", "profiles", "domains", "note"], keys_,
                    "no EAB key (acme-gateway eab create)"))
    return _page(request, "ACME accounts", body)


async def est(request: web.Request) -> web.Response:
    """GET /admin/console/est: EST labels (profile, authentication) and users (from config)."""
    overview = request.app[keys.CONSOLE_EST]
    labels = [tuple(e(row[k]) for k in ("label", "profile", "auth", "users", "names"))
              for row in overview["labels"]]
    users = [(e(row["user"]), e(row["names"])) for row in overview["users"]]
    body = (table(["label", "profile", "authentication", "users", "names"], labels,
                  "no EST label configured") + "<h2>Users (HTTP Basic)</h2>"
            + table(["user", "may request"], users, "no EST user configured")
            + "<p>Labels and users are configured in <code>[est]</code>; a change takes "
              "effect when the gateway restarts.</p>")
    return _page(request, "EST labels and users", body)


def _audit_row(r: dict[str, Any]) -> tuple[str, ...]:
    at = render.when(datetime.fromtimestamp(r["at"], UTC))
    names = ", ".join(json.loads(r["identifiers"] or "[]"))
    return (e(r["seq"]), e(at), e(r["event"]), e(r["actor"]), e(names), e(r["profile"]),
            e(r["result"]), e(r["detail"]))


async def audit(request: web.Request) -> web.Response:
    """GET /admin/console/audit: the newest audit events, filtered."""
    event = request.query.get("event", "")[:40]
    text = request.query.get("text", "")[:200]
    rows = await request.config_dict[keys.CORE].inventory.recent_events(event, text)
    form = (f'<form method="get"><label>event <input name="event" value="{e(event)}" '
            f'size="16"></label> <label>containing <input name="text" value="{e(text)}">'
            f"</label> <button>Search</button></form>")
    body = form + table(["seq", "at", "event", "actor", "names", "profile", "result",
                         "detail"], map(_audit_row, rows), "no event matches")
    return _page(request, "Audit trail", body)


async def compliance(request: web.Request) -> web.Response:
    """GET /admin/console/compliance: each issuance judged by its recorded policy."""
    since, until = period(request.query)
    verdicts = await request.config_dict[keys.CORE].inventory.compliance(since, until)
    rows = [(e(render.when(v.issued_at)), e(v.serial), e(", ".join(v.names)), e(v.profile),
             e(v.approved_by or ("required, missing" if v.approval_required else "not required")),
             f'<span class="{"ok" if not v.violations else "bad"}">{e(v.verdict)}</span>',
             e("; ".join(v.violations))) for v in verdicts]
    query = request.query_string
    body = (f'<form method="get"><label>since <input name="since" type="date" '
            f'value="{e(request.query.get("since", ""))}"></label> <label>until <input '
            f'name="until" type="date" value="{e(request.query.get("until", ""))}"></label> '
            f'<button>Show</button> <a href="/admin/console/compliance.csv?{e(query)}">'
            f"Download CSV</a></form>"
            + table(["issued", "serial", "names", "profile", "approval", "verdict",
                     "violations"], rows, "no issuance in this period"))
    return _page(request, "Compliance", body)


async def compliance_csv(request: web.Request) -> web.Response:
    """GET /admin/console/compliance.csv."""
    since, until = period(request.query)
    verdicts = await request.config_dict[keys.CORE].inventory.compliance(since, until)
    return web.Response(text=render.compliance_csv(verdicts), content_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="compliance.csv"',
                                 "Cache-Control": "no-store"})
