"""What the front ends that answer devices in one line of text share (EST, SCEP).

The guard (:func:`answer_in_text`):
Every request is admitted by the per-address request limit and read within
the front end's body limit; a core refusal, an aiohttp refusal (no route,
wrong method, body too large) and any unexpected error each become an answer
in the front end's own form, never a traceback. And the lookup of the label a
request path names (:func:`label_of`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import keys
from gateway.bodies import within_limit
from gateway.errors import ErrorKind, GatewayError

L = TypeVar("L")

log = logging.getLogger("gateway.textfront")


async def answer_in_text(request: web.Request, handler: Handler, limit: int, *,
                         refusal: Callable[[GatewayError], web.Response],
                         http_error: Callable[[web.HTTPException], web.Response],
                         internal_error: Callable[[], web.Response],
                         let_through: tuple[type[Exception], ...] = ()) -> web.StreamResponse:
    """Run ``handler``; ``let_through`` exceptions are the caller's to answer."""
    try:
        request.config_dict[keys.CORE].limits.admit_request()
        return await handler(within_limit(request, limit))
    except let_through:
        raise
    except GatewayError as exc:
        return refusal(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return http_error(exc)
    except Exception:  # never a traceback to a device: log it, answer 500
        log.exception("unhandled error in %s %s", request.method, request.path)
        return internal_error()


def label_of(request: web.Request, labels: Mapping[str, L], default: str,
             protocol: str) -> L:
    """The label a request path names (the default label for the bare path), or a 404.

    ``protocol`` ("EST", "SCEP") names the protocol and its config table in the reason.
    """
    name = request.match_info.get("label")
    label = labels.get(default if name is None else name)
    if label is None:
        table = f"[{protocol.lower()}.labels.NAME]"
        offered = ", ".join(sorted(labels)) or f"none (add {table} to the config)"
        what = f"unknown {protocol} label {name!r}" if name else f"no default {protocol} label"
        raise GatewayError(ErrorKind.NOT_FOUND, f"{what}; configured labels: {offered}")
    return label
