"""create_app(settings): the one place that picks and wires concrete parts.

Request path, for a newcomer: ``gateway.acme.routes`` (ACME, under /acme/) and
``gateway.est`` (EST, under /.well-known/est/) parse the wire and call the
:class:`gateway.core.service.Core` held under ``keys.CORE``. The core alone
reaches the store (``gateway.storage``), the validation authority
(``gateway.validation``) and the CA connectors (``connectors``), all made here
in one cleanup context and closed in reverse order on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from connectors.base import CAConfigError, Connector
from gateway import audit, keys
from gateway.acme.nonces import Nonces, NonceService
from gateway.acme.routes import acme_app
from gateway.admin.routes import admin_app
from gateway.config import CASettings, Settings
from gateway.core.clock import Clock
from gateway.core.pkix import PkixService
from gateway.core.role import ProcessRole
from gateway.core.service import Core
from gateway.errors import ConfigError
from gateway.est.routes import est_app
from gateway.metrics import Metrics, metrics_handler
from gateway.pkix.routes import add_routes as add_pkix_routes
from gateway.storage.base import Store
from gateway.validation import Validator
from gateway.validation.engine import ValidationAuthority

CONNECTOR_TYPES = ("local", "adcs", "ejbca")


def build_store(settings: Settings, role: ProcessRole | None = None) -> Store:
    """The configured store: SQLite by default, PostgreSQL for several nodes."""
    url = settings.storage_url()
    if url.startswith("sqlite:///"):
        from gateway.storage.sqlite import SQLiteStore

        return SQLiteStore(Path(url[len("sqlite:///"):]), settings.storage.group_commit_ms,
                           shared=role is not None and role.shared,
                           account_changes=role.account_changes if role else None)
    raise ConfigError(settings.source, "storage.url",
                      "PostgreSQL is not available in this build; use sqlite:///PATH")


def _connector(ca: CASettings, settings: Settings) -> Connector:
    data_dir = settings.server.data_dir
    if ca.type == "local":
        from connectors.localca import LocalCAConnector
        from connectors.localca_settings import LocalCASettings

        options = dict(ca.options)
        options.setdefault("public_base_url", settings.server.pkix_base_url())
        return LocalCAConnector(ca.name, LocalCASettings.from_options(options, data_dir, ca.name))
    if ca.type == "adcs":
        from connectors.adcs import CertsrvConnector, CertsrvSettings

        settings_ = CertsrvSettings.from_options(ca.options, data_dir, ca.name)
        return CertsrvConnector(ca.name, settings_)
    from connectors.ejbca import EjbcaConnector, EjbcaSettings

    return EjbcaConnector(ca.name, EjbcaSettings.from_options(ca.options, data_dir, ca.name))


def build_connectors(settings: Settings) -> dict[str, Connector]:
    """One connector per ``[cas.NAME]``; a bad table stops the start naming the key."""
    built = {}
    for name, ca in settings.cas.items():
        try:
            built[name] = _connector(ca, settings)
        except CAConfigError as exc:
            raise ConfigError(settings.source, f"cas.{name}", str(exc)) from exc
    return built


async def prepare(settings: Settings) -> None:
    """First-start work done once before several processes start serving.

    Opening the store runs its migrations, and starting the connectors creates a
    local CA's key and certificate on first use: two processes doing either at
    the same time could race (two CA keys). Everything is closed again, so the
    caller can fork with no threads or open handles.
    """
    store = build_store(settings)
    await store.open()
    await store.close()
    for connector in build_connectors(settings).values():
        start = getattr(connector, "start", None)
        if start is not None:
            await start()
            await connector.aclose()


def create_app(settings: Settings, *, clock: Clock | None = None,
               validator: Validator | None = None,
               connectors: Mapping[str, Connector] | None = None,
               role: ProcessRole | None = None,
               nonces: Nonces | None = None) -> web.Application:
    """The gateway application; tests may inject a clock, validator or connectors.

    ``role`` and ``nonces`` are given by ``serve --workers N``: which process
    this is, and the nonce store all of them share.
    """
    app = web.Application(client_max_size=1024 * 1024, middlewares=[request_context])
    app[keys.SETTINGS] = settings
    app[keys.NONCES] = nonces or NonceService(settings.acme.nonce_lifetime_seconds)
    chosen = dict(connectors) if connectors is not None else build_connectors(settings)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        async with _Resources(settings, chosen, validator, clock, role) as core:
            app[keys.CORE] = core
            yield

    app.cleanup_ctx.append(resources)
    # CRLs and OCSP of the CAs that publish their own (the local CA), at the URLs
    # written into the certificates it issues.
    app[keys.PKIX_SERVICE] = PkixService(chosen)
    add_pkix_routes(app)
    if settings.admin.token:  # no token configured: no admin API at all
        app.add_subapp("/admin/", admin_app(settings.admin.token))
    metrics = app[keys.METRICS] = Metrics(lambda: _in_flight(app),
                                          shared_dir=role.metrics_dir if role else None,
                                          ca_states=lambda: _ca_states(app))
    app.cleanup_ctx.append(metrics.publishing)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    acme = acme_app()
    app.add_subapp("/acme/", acme)
    app.add_subapp("/.well-known/est/", est_app(settings))
    # Clients configured with the bare directory path land on the real one.
    app.router.add_get("/directory", directory_redirect)
    return app


async def directory_redirect(request: web.Request) -> web.Response:
    """/directory → /acme/directory, for clients configured with the bare path."""
    raise web.HTTPMovedPermanently("/acme/directory")


@web.middleware
async def request_context(request: web.Request, handler: Any) -> web.StreamResponse:
    """Source address and a request id for the audit events this request causes."""
    info = audit.RequestInfo(audit.new_request_id(), request.remote or "")
    token = audit.CURRENT_REQUEST.set(info)
    try:
        return await handler(request)  # type: ignore[no-any-return]
    finally:
        audit.CURRENT_REQUEST.reset(token)


def _in_flight(app: web.Application) -> dict[str, int]:
    core = app.get(keys.CORE)
    if core is None:
        return {}
    return {"validations_in_flight": core.validations.in_flight,
            "ca_jobs_in_flight": core.issuance.in_flight}


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: every CA is up (per its last probe or call); per-CA state in the body."""
    health = request.app[keys.CORE].ready()
    ok = all(v["state"] == "up" for v in health.values())
    return web.json_response({"status": "ok" if ok else "degraded", "cas": health},
                             status=200 if ok else 503)


def _ca_states(app: web.Application) -> dict[str, dict[str, Any]]:
    core = app.get(keys.CORE)
    return core.ready() if core is not None else {}


class _Resources:
    """Opens store, connectors, validator and core in order; closes them in reverse."""

    def __init__(self, settings: Settings, connectors: dict[str, Connector],
                 validator: Validator | None, clock: Clock | None,
                 role: ProcessRole | None = None) -> None:
        self.settings = settings
        self.role = role
        self.connectors = connectors
        self.validator = validator
        self.clock = clock
        self.store: Store | None = None
        self.core: Core | None = None
        self.started: list[Any] = []

    async def __aenter__(self) -> Core:
        self.store = build_store(self.settings, self.role)
        await self.store.open()
        for connector in self.connectors.values():
            start = getattr(connector, "start", None)
            if start is not None:
                await start()
            self.started.append(connector)
        if self.validator is None:
            authority = ValidationAuthority(self.settings.validation)
            await authority.start()
            self.validator = authority
        self.core = Core(self.settings, self.store, self.validator, self.connectors, self.clock,
                         self.role)
        await self.core.start()
        return self.core

    async def __aexit__(self, *exc: object) -> None:
        if self.core is not None:
            await self.core.stop()
        if self.validator is not None:
            await self.validator.aclose()
        for connector in reversed(self.started):
            await connector.aclose()
        if self.store is not None:
            await self.store.close()
