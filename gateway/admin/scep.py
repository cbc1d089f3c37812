"""``POST /admin/scep/{label}/otp``: a one-time SCEP challenge password, for MDM tooling.

Body (optional): ``{"names": ["iphone-0042.mdm.corp.example"], "operator": "alice"}``.
Answer: ``{"password": "...", "label": ..., "names": [...], "expires_in": seconds}``;
the password is in this answer only (the store keeps its SHA-256), and the issue
is audited as ``scep_otp_issued`` with the operator.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway import keys
from gateway.config import name_patterns
from gateway.config_table import Table
from gateway.core.scep import ScepGate
from gateway.errors import ConfigError, ErrorKind, GatewayError


def _gate(request: web.Request) -> ScepGate:
    label = request.match_info["label"]
    gate = request.config_dict[keys.SCEP_GATES].get(label)
    if gate is None or not gate.one_time_passwords:
        raise GatewayError(ErrorKind.NOT_FOUND, f"no SCEP label {label!r} with "
                           "one_time_passwords = true")
    return gate


def _names(body: dict[str, Any], gate: ScepGate) -> tuple[str, ...]:
    try:
        names = name_patterns(Table("admin API", "", body), "names")
    except ConfigError as exc:
        raise GatewayError(ErrorKind.MALFORMED, str(exc)) from None
    if not names and not gate.names:
        raise GatewayError(ErrorKind.MALFORMED, f"label {gate.label!r} binds no names: give "
                           "the device its names in \"names\"")
    return names


async def issue_otp(request: web.Request, body: dict[str, Any]) -> web.Response:
    """Issue one password for the label in the path."""
    gate = _gate(request)
    names = _names(body, gate)
    operator = body.get("operator")
    actor = f"admin:{operator}" if isinstance(operator, str) and operator else "admin:api"
    password = await request.config_dict[keys.CORE].scep.otps.issue(gate, names, actor)
    return web.json_response({"password": password, "label": gate.label, "names": list(names),
                              "expires_in": gate.otp_lifetime_seconds})
