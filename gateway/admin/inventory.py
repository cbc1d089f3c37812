"""Admin API: the certificate inventory and ACME accounts (JSON, under /admin/).

* ``GET  /admin/certificates?name=&serial=&account=&profile=&ca=&state=&expires_after=
  &expires_before=&expires_within_days=&limit=``  search
* ``GET  /admin/certificates/{id or serial}``           one, with chain and audit history
* ``POST /admin/certificates/{id or serial}/revoke``     ``{"reason": "keyCompromise"}``
* ``GET  /admin/accounts?status=&limit=``               ACME accounts, newest first
* ``POST /admin/accounts/{id}/deactivate``
* ``GET  /admin/compliance?since=&until=&format=json|csv``  each issuance judged by the
  policy recorded with it

Authentication and error rendering are the admin app's (gateway.admin.routes).
"""

from __future__ import annotations

from aiohttp import web

from gateway import keys
from gateway.admin import render
from gateway.admin.query import certificate_query, period
from gateway.admin.request import json_body, operator
from gateway.errors import ErrorKind, GatewayError


async def list_certificates(request: web.Request) -> web.Response:
    """GET /admin/certificates: a search."""
    core = request.config_dict[keys.CORE]
    query = certificate_query(dict(request.query), core.clock.now())
    found = await core.inventory.find(query)
    return web.json_response({"certificates": [render.certificate(c) for c in found]})


async def show_certificate(request: web.Request) -> web.Response:
    """GET /admin/certificates/{ref}."""
    record = await request.config_dict[keys.CORE].inventory.record(request.match_info["ref"])
    return web.json_response(render.certificate_record(record))


async def revoke_certificate(request: web.Request) -> web.Response:
    """POST /admin/certificates/{ref}/revoke."""
    body = await json_body(request)
    issued = await request.config_dict[keys.CORE].inventory.revoke(
        request.match_info["ref"], body.get("reason"), operator(body))
    return web.json_response(render.certificate(issued))


async def list_accounts(request: web.Request) -> web.Response:
    """GET /admin/accounts."""
    status = request.query.get("status", "")
    limit_text = request.query.get("limit", "100")
    if not limit_text.isdigit() or len(limit_text) > 4:
        raise GatewayError(ErrorKind.MALFORMED, "limit must be a whole number from 1 to 1000")
    found = await request.config_dict[keys.CORE].inventory.accounts(status[:40], int(limit_text))
    return web.json_response({"accounts": [render.account(a) for a in found]})


async def deactivate_account(request: web.Request) -> web.Response:
    """POST /admin/accounts/{id}/deactivate."""
    body = await json_body(request)
    account = await request.config_dict[keys.CORE].inventory.deactivate_account(
        request.match_info["id"], operator(body))
    return web.json_response(render.account(account))


async def compliance_report(request: web.Request) -> web.Response:
    """GET /admin/compliance: JSON, or CSV with ``format=csv``."""
    since, until = period(request.query)
    form = request.query.get("format", "json")
    if form not in ("json", "csv"):
        raise GatewayError(ErrorKind.MALFORMED, "format must be json or csv")
    verdicts = await request.config_dict[keys.CORE].inventory.compliance(since, until)
    if form == "csv":
        return web.Response(text=render.compliance_csv(verdicts), content_type="text/csv",
                            headers={"Content-Disposition":
                                     'attachment; filename="compliance.csv"'})
    return web.json_response({"since": render.when(since), "until": render.when(until),
                              "issuances": [render.verdict(v) for v in verdicts]})


def add_routes(app: web.Application) -> None:
    """The inventory routes, on the admin app."""
    app.router.add_get("/certificates", list_certificates)
    app.router.add_get("/certificates/{ref}", show_certificate)
    app.router.add_post("/certificates/{ref}/revoke", revoke_certificate)
    app.router.add_get("/accounts", list_accounts)
    app.router.add_post("/accounts/{id}/deactivate", deactivate_account)
    app.router.add_get("/compliance", compliance_report)
