"""Request body limits per front end: refused from Content-Length, or by counting when chunked.

aiohttp applies one limit (the root application's ``client_max_size``) to every
request, and only when a handler reads the body. Each front end calls
:func:`within_limit` in its middleware: a ``Content-Length`` over the limit is
refused before a byte of the body is read, and a chunked body is read through
a request whose own limit is the front end's, so aiohttp stops counting there
(``web.HTTPRequestEntityTooLarge``, which the front end renders with
:func:`too_large`).
"""

from __future__ import annotations

from aiohttp import web

from gateway.errors import ErrorKind, GatewayError

# Every route outside the front ends (admin API, OCSP, metrics): the root application's.
DEFAULT_MAX_BODY = 1024 * 1024


def too_large(limit: int) -> GatewayError:
    """The refusal of a body over ``limit`` bytes."""
    return GatewayError(ErrorKind.PAYLOAD_TOO_LARGE,
                        f"the request body is larger than {limit} bytes, the most this "
                        "resource accepts")


def within_limit(request: web.Request, limit: int) -> web.Request:
    """``request``, or a copy that counts a chunked body against ``limit``; refuses a
    Content-Length over it."""
    length = request.content_length
    if length is not None:
        if length > limit:
            raise too_large(limit)
        return request  # aiohttp reads no more than Content-Length
    if request.body_exists and request.client_max_size != limit:
        return request.clone(client_max_size=limit)
    return request
