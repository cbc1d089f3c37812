"""The plain-HTTP listener for relying parties: CRLs and OCSP, and nothing else.

Certificates of the local CA name ``http://<host>:<pkix_http_port>/pkix/...``
as their CRL distribution point and OCSP responder (RFC 5280 practice: no TLS,
so a relying party need not trust the gateway's own certificate to check
revocation, and OCSP stapling servers can fetch without warnings). This
listener serves only the ``/pkix/`` routes — never ACME, EST, the admin API or
metrics — sharing the main application's :class:`~gateway.core.pkix.PkixService`.

A port that is taken stops the start with one line naming it, like the other
listeners: certificates would otherwise carry CRL and OCSP URLs that another
process answers.
"""

from __future__ import annotations

from aiohttp import web

from gateway.config import ServerSettings
from gateway.errors import StartError
from gateway.keys import PKIX_SERVICE
from gateway.listeners import bind_failure
from gateway.pkix.routes import add_routes


def pkix_app(main: web.Application) -> web.Application:
    """An application with the /pkix/ routes only, backed by ``main``'s PkixService."""
    app = web.Application(client_max_size=64 * 1024)
    app[PKIX_SERVICE] = main[PKIX_SERVICE]
    add_routes(app)
    return app


async def start(main: web.Application, server: ServerSettings,
                reuse_port: bool = False) -> web.AppRunner | None:
    """Listen on ``server.pkix_http_port`` (0: off); the runner to clean up, or None."""
    if not server.pkix_http_port:
        return None
    runner = web.AppRunner(pkix_app(main), handle_signals=False, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, server.listen, server.pkix_http_port,
                          reuse_port=reuse_port or None).start()
    except OSError as exc:
        await runner.cleanup()
        raise StartError(bind_failure(server.listen, server.pkix_http_port, "pkix_http_port",
                                      exc)) from None
    return runner
