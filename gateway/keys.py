"""Every aiohttp AppKey and RequestKey of the gateway, in one place (no module-level singletons)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gateway.acme.nonces import Nonces
    from gateway.admin.session import ConsoleSessions, Session
    from gateway.config import Settings
    from gateway.connections import ConnectionBudget
    from gateway.core.pkix import PkixService
    from gateway.core.scep import ScepGate
    from gateway.core.service import Core
    from gateway.metrics import Metrics

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
CORE: web.AppKey[Core] = web.AppKey("core")
NONCES: web.AppKey[Nonces] = web.AppKey("nonces")
PKIX_SERVICE: web.AppKey[PkixService] = web.AppKey("pkix_service")
# How each SCEP label authorizes, by label (the admin API issues one-time passwords).
SCEP_GATES: web.AppKey[Mapping[str, ScepGate]] = web.AppKey("scep_gates")

METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
CONNECTIONS: web.AppKey[ConnectionBudget] = web.AppKey("connections")

# The web console (gateway.admin): its session checker, and per request the
# logged-in operator's session and the CSRF token of its forms.
CONSOLE_SESSIONS: web.AppKey[ConsoleSessions] = web.AppKey("console_sessions")
CONSOLE_SESSION: web.RequestKey[Session] = web.RequestKey("console_session")
CONSOLE_CSRF: web.RequestKey[str] = web.RequestKey("console_csrf")
# EST labels and users as the console lists them (gateway.app derives them from [est]).
CONSOLE_EST: web.AppKey[dict[str, list[dict[str, str]]]] = web.AppKey("console_est")
