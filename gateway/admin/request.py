"""What every admin POST reads: an optional JSON object body and the acting operator."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.errors import ErrorKind, GatewayError

MAX_OPERATOR = 64


async def json_body(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; no body is an empty object."""
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise GatewayError(ErrorKind.MALFORMED, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise GatewayError(ErrorKind.MALFORMED, "the body must be a JSON object")
    return body


def operator(body: dict[str, Any]) -> str:
    """The actor recorded for an admin action: ``admin:<approver>`` or ``admin:api``."""
    name = body.get("approver")
    if isinstance(name, str) and name and len(name) <= MAX_OPERATOR and name.isprintable():
        return f"admin:{name}"
    return "admin:api"
