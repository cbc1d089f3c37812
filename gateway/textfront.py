"""The guard of front ends that answer devices in one line of text (EST, SCEP).

Every request is admitted by the per-address request limit and read within
the front end's body limit; a core refusal, an aiohttp refusal (no route,
wrong method, body too large) and any unexpected error each become an answer
in the front end's own form, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import keys
from gateway.bodies import within_limit
from gateway.errors import GatewayError

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
