"""The SCEP sub-application under /scep/ and the middleware every answer passes.

Routes: ``/scep/pkiclient.exe`` and ``/scep/`` (the default label), and
``/scep/<label>/pkiclient.exe`` and ``/scep/<label>`` (one label each), all
taking ``GET`` and ``POST`` with ``?operation=GetCACaps|GetCACert|PKIOperation``.

Failures before a pkiMessage is read (unknown label or operation, garbage,
a body too large) are a 4xx with a one-line text/plain reason; refusals of a
readable pkiMessage are signed CertReps (:mod:`gateway.scep.handlers`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.bodies import too_large
from gateway.config import Settings
from gateway.errors import ErrorKind
from gateway.scep import handlers as h
from gateway.scep.ra import load_or_create
from gateway.scep.settings import ScepSettings, parse
from gateway.textfront import answer_in_text

STATUS = {ErrorKind.NOT_FOUND: 404, ErrorKind.REQUEST_TIMEOUT: 408,
          ErrorKind.PAYLOAD_TOO_LARGE: 413, ErrorKind.RATE_LIMITED: 429,
          ErrorKind.SERVER_INTERNAL: 500, ErrorKind.CA_UNAVAILABLE: 503}


def text_response(status: int, reason: str, retry_after: int | None = None) -> web.Response:
    """A one-line text/plain answer."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.Response(status=status, text=reason.replace("\n", " ") + "\n", headers=headers)


def http_error(exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusals (no route, wrong method, body too large) as one-line reasons."""
    if exc.status == 404:
        return text_response(404, "no such SCEP resource; use /scep/[LABEL/]pkiclient.exe"
                             "?operation=GetCACaps|GetCACert|PKIOperation")
    if exc.status == 413:
        return text_response(413, too_large(h.MAX_MESSAGE).detail)
    return text_response(exc.status, exc.reason or "request refused")


@web.middleware
async def scep_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a one-line text answer, never a traceback."""
    return await answer_in_text(
        request, handler, h.MAX_MESSAGE, http_error=http_error,
        refusal=lambda exc: text_response(STATUS.get(exc.kind, 400), exc.detail,
                                          exc.retry_after),
        internal_error=lambda: text_response(500, "internal error; the gateway log has "
                                             "details"))


def _registration_authority(scep: ScepSettings) -> object:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[h.SCEP_RA] = await asyncio.to_thread(load_or_create, scep.ra_key_file,
                                                 scep.ra_cert_file)
        yield
    return ctx


def prepare_scep(settings: Settings) -> None:
    """Make the RA key and certificate before worker processes start (first start only)."""
    scep = parse(settings)
    if scep.labels:
        load_or_create(scep.ra_key_file, scep.ra_cert_file)


def scep_app(settings: Settings) -> web.Application:
    """The SCEP routes (mounted at /scep/ by gateway.app)."""
    app = web.Application(middlewares=[scep_middleware])
    scep = app[h.SCEP_SETTINGS] = parse(settings)
    if scep.labels:  # no label: no RA key is made either
        app.cleanup_ctx.append(_registration_authority(scep))  # type: ignore[arg-type]
    for path in ("/pkiclient.exe", "/", "/{label}/pkiclient.exe", "/{label}"):
        app.router.add_route("GET", path, h.operation)
        app.router.add_route("POST", path, h.operation)
    return app
