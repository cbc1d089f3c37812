"""Trust anchors for TLS client certificates, computed once the core has started.

OpenSSL verifies a presented client certificate against every EST label's
anchors (the label's CA certificates, reached through the core, and its
``client_ca_files``); :mod:`gateway.est.auth` then narrows to the label's own.
"""

from __future__ import annotations

import ssl

from aiohttp import web

from gateway import keys
from gateway.est.settings import parse


async def client_ca_pem(app: web.Application) -> str:
    """PEM of every anchor of every EST label ("" when no label is configured).

    Call after the app has started (the core must be running); a CA certificate
    that changes later is picked up on restart.
    """
    est = parse(app[keys.SETTINGS])
    if not est.labels:
        return ""
    profiles = tuple(sorted({label.profile for label in est.labels.values()}))
    ders = list(await app[keys.CORE].est.trust_anchors(profiles))
    for label in est.labels.values():
        ders.extend(label.client_ca_der)
    return "".join(ssl.DER_cert_to_PEM_cert(der) for der in dict.fromkeys(ders))
