"""HTML for the console: one layout, tables, forms, bar charts; every value escaped.

No script, no external asset: the pages are usable with any browser and the
Content-Security-Policy forbids everything but the inline style sheet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from aiohttp import web

NAV = (("/admin/", "Overview"), ("/admin/console/approvals", "Approvals"),
       ("/admin/console/certificates", "Certificates"), ("/admin/console/accounts", "Accounts"),
       ("/admin/console/est", "EST"),
       ("/admin/console/audit", "Audit"), ("/admin/console/compliance", "Compliance"))
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
}
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#1d2330;color:#fff;padding:.6em 1.2em;display:flex;gap:1.2em;align-items:center}
header a{color:#cfd6e4;text-decoration:none}header a:hover{color:#fff}
header form{margin-left:auto}main{padding:1em 1.5em;max-width:1200px}
table{border-collapse:collapse;width:100%;background:#fff;margin:.5em 0 1.5em}
th,td{border-bottom:1px solid #e2e5ea;padding:.35em .6em;text-align:left;vertical-align:top}
th{background:#eef0f4;font-weight:600}td.num{text-align:right}
.card{display:inline-block;background:#fff;border:1px solid #e2e5ea;padding:.6em 1em;
margin:0 .6em .6em 0;min-width:10em}.card b{display:block;font-size:1.6em}
.ok{color:#1a7f37}.bad{color:#b42318}.warn{color:#9a6700}
.error{background:#fde8e8;border:1px solid #f3b5b5;padding:.5em 1em}
.notice{background:#e6f4ea;border:1px solid #a8d5b5;padding:.5em 1em}
input,select,button{font:inherit;padding:.2em .4em}pre{background:#fff;padding:.6em;
overflow-x:auto;border:1px solid #e2e5ea}form.inline{display:inline}
"""


def e(value: Any) -> str:
    """Any value as escaped text (None as an empty string)."""
    return escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, *, csrf: str = "", status: int = 200,
         operator: str = "") -> web.Response:
    """A whole console page."""
    nav = "".join(f'<a href="{href}">{e(text)}</a>' for href, text in NAV) if csrf else ""
    logout = (f'<form method="post" action="/admin/console/logout">{hidden(csrf)}'
              f'<span>{e(operator)}</span> <button>Log out</button></form>') if csrf else ""
    text = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<title>{e(title)} · acme-gateway</title><style>{_STYLE}</style></head>'
            f'<body><header><strong>acme-gateway</strong>{nav}{logout}</header>'
            f'<main><h1>{e(title)}</h1>{body}</main></body></html>')
    return web.Response(text=text, content_type="text/html", status=status, headers=HEADERS)


def redirect(location: str) -> web.Response:
    """303 See Other: after a form, the browser GETs ``location``."""
    return web.Response(status=303, headers={"Location": location, **HEADERS})


def hidden(csrf: str) -> str:
    """The CSRF field every form carries."""
    return f'<input type="hidden" name="csrf" value="{e(csrf)}">'


def table(heads: Sequence[str], rows: Iterable[Sequence[str]], empty: str = "none") -> str:
    """A table of cells already rendered (escape values with :func:`e`)."""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        body = f'<tr><td colspan="{len(heads)}">{e(empty)}</td></tr>'
    return ("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in heads) + "</tr>"
            + body + "</table>")


def bars(title: str, points: Sequence[tuple[str, int]], width: int = 560,
         height: int = 160) -> str:
    """A server-rendered SVG bar chart; each bar's label and value on hover and below."""
    top = max((v for _, v in points), default=0) or 1
    step = width / max(len(points), 1)
    rects = []
    for i, (label, value) in enumerate(points):
        h = round((height - 20) * value / top)
        rects.append(f'<rect x="{i * step + 1:.1f}" y="{height - 20 - h}" '
                     f'width="{max(step - 2, 1):.1f}" height="{h}" fill="#3b6fd8">'
                     f"<title>{e(label)}: {value}</title></rect>")
    first = e(points[0][0]) if points else ""
    last = e(points[-1][0]) if points else ""
    return (f'<figure><figcaption>{e(title)} (highest {top if any(v for _, v in points) else 0})'
            f'</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" role="img" aria-label="{e(title)}">{"".join(rects)}'
            f'<line x1="0" y1="{height - 19}" x2="{width}" y2="{height - 19}" stroke="#8a93a6"/>'
            f'<text x="0" y="{height - 4}" font-size="11">{first}</text>'
            f'<text x="{width}" y="{height - 4}" font-size="11" text-anchor="end">{last}</text>'
            f"</svg></figure>")
