"""Generated admin requests: the JSON API's queries and bodies, the console's forms and cookies.

The API answers refusals as ``{"error": ...}`` JSON, the console as an HTML page;
neither may answer 5xx or hang, whatever the query string, body, token or cookie.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from urllib.parse import quote

from tests.badinput import corpus
from tests.badinput.case import Case
from tests.badinput.server import ADMIN_TOKEN, Target

API_GETS = ["/admin/certificates", "/admin/accounts", "/admin/compliance", "/admin/approvals",
            "/admin/certificates/{ref}"]
API_POSTS = ["/admin/certificates/{ref}/revoke", "/admin/accounts/{ref}/deactivate",
             "/admin/approvals/{ref}/approve", "/admin/approvals/{ref}/reject"]
CONSOLE_GETS = ["/admin/", "/admin/console/certificates", "/admin/console/certificates/{ref}",
                "/admin/console/approvals", "/admin/console/accounts", "/admin/console/audit",
                "/admin/console/compliance", "/admin/console/compliance.csv", "/admin/login",
                "/admin/console/est"]
CONSOLE_POSTS = ["/admin/login", "/admin/console/certificates/{ref}/revoke",
                 "/admin/console/accounts/{ref}/deactivate", "/admin/console/logout",
                 "/admin/console/approvals/{ref}/approve", "/admin/console/approvals/{ref}/reject"]
FIELDS = ["name", "serial", "account", "profile", "ca", "state", "expires_after",
          "expires_before", "expires_within_days", "limit", "since", "until", "format",
          "status", "event", "text", "done", "reason", "csrf", "token", "operator", "x"]


def _ref(rng: random.Random, t: Target) -> str:
    odd = corpus.pick(rng, corpus.ODD_STRINGS)
    return quote(corpus.pick(rng, [t.certificate_id, t.certificate_serial, "nope", odd or "x",
                                   "0" * 70, "4f:0A:zz"]), safe="")


def _query(rng: random.Random) -> str:
    # Values up to 1,000 characters: a longer request line is refused by the HTTP
    # parser before any route (the raw cases try that).
    pairs = [(rng.choice(FIELDS), corpus.pick(rng, corpus.ODD_STRINGS + ["valid", "csv",
                                                                        "keyCompromise"])[:1000])
             for _ in range(rng.randrange(4))]
    return "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in pairs)


def _json_body(rng: random.Random) -> bytes:
    choice = rng.randrange(4)
    if choice == 0:
        return json.dumps({"reason": corpus.pick(rng, corpus.ODD_VALUES),
                           "approver": corpus.pick(rng, corpus.ODD_VALUES)}).encode()
    if choice == 1:
        return json.dumps(corpus.pick(rng, corpus.ODD_VALUES)).encode()
    return corpus.pick(rng, [b"", b"{", b"\xff\xfe", b"[" * 500, b'{"reason": 1e999}'])


def api_case(rng: random.Random, t: Target) -> Case:
    """The JSON API with the right token (mostly), odd ids, queries and bodies."""
    post = rng.random() < 0.5
    path = corpus.pick(rng, API_POSTS if post else API_GETS).format(ref=_ref(rng, t))
    query = _query(rng)
    token = ADMIN_TOKEN if rng.random() < 0.85 else corpus.pick(rng, ["", "x", ADMIN_TOKEN + " "])
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return Case("admin.api", "POST" if post else "GET", t.url(f"{path}?{query}"),
                _json_body(rng) if post else b"", headers)


def console_case(rng: random.Random, t: Target) -> Case:
    """The console with the session (mostly), odd forms, CSRF tokens and cookies."""
    post = rng.random() < 0.5
    path = corpus.pick(rng, CONSOLE_POSTS if post else CONSOLE_GETS).format(ref=_ref(rng, t))
    cookie = t.admin_cookie if rng.random() < 0.8 else corpus.pick(rng, [
        "", t.admin_cookie + "x", "gw_console=" + "a." * 100, "gw_console=1.a.b.c",
        t.admin_cookie.replace("operator", "mallory")])
    form = _query(rng)
    if post and rng.random() < 0.6:
        form += f"&csrf={t.admin_csrf}"
    headers = {"Cookie": cookie, "Content-Type": corpus.pick(rng, [
        "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
        "application/json", "text/plain"])}
    return Case("admin.console", "POST" if post else "GET", t.url(f"{path}?{_query(rng)}"),
                form.encode() if post else b"", headers)


BUILDERS: list[tuple[Callable[[random.Random, Target], Case], int]] = [
    (api_case, 3), (console_case, 3),
]
"""Each builder with its weight."""
