"""create_app(settings): the one place that picks and wires concrete parts.

Request path, for a newcomer: ``gateway.acme.routes`` (ACME, under /acme/) and
``gateway.est`` (EST, under /.well-known/est/) parse the wire and call the
:class:`gateway.core.service.Core` held under ``keys.CORE``. The core alone
reaches the store (``gateway.storage``), the validation authority
(``gateway.validation``) and the CA connectors (``connectors``), all made here
in one cleanup context and closed in reverse order on shutdown.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from aiohttp import web

from connectors import registry
from connectors.base import CAConfigError, Connector, ConnectorError
from connectors.registry import Site
from gateway import audit, keys
from gateway.acme import problems
from gateway.acme import routes as acme
from gateway.acme.nonces import Nonces, NonceService
from gateway.admin.routes import admin_app
from gateway.bodies import DEFAULT_MAX_BODY, within_limit
from gateway.config import Settings
from gateway.connections import Caps, ConnectionBudget
from gateway.core.node_nonces import NodeNonces
from gateway.core.pkix import PkixService
from gateway.core.role import ProcessRole
from gateway.core.service import Core
from gateway.errors import ConfigError, GatewayError, StartError
from gateway.est.routes import est_app
from gateway.est.routes import http_error as est_http_error
from gateway.est.settings import parse as parse_est
from gateway.metrics import Metrics, front_end, metrics_handler
from gateway.metrics_pki import metered_connectors
from gateway.model.clock import Clock
from gateway.model.store import DatabaseStats, NonceLedger, Store
from gateway.pkix.routes import add_routes as add_pkix_routes
from gateway.scep.handlers import SCEP_SETTINGS
from gateway.scep.routes import http_error as scep_http_error
from gateway.scep.routes import prepare_scep, scep_app
from gateway.validation import Validator
from gateway.validation.engine import ValidationAuthority
from gateway.version import version

# Front ends that apply their own (smaller) body limits, with their own wire form.
_OWN_BODY_LIMITS = ("acme", "est", "scep")


def build_store(settings: Settings, role: ProcessRole | None = None) -> Store:
    """The configured store: SQLite by default, PostgreSQL for several nodes."""
    url = settings.storage_url()
    if url.startswith("sqlite:///"):
        from gateway.storage.sqlite import SQLiteStore

        return SQLiteStore(Path(url[len("sqlite:///"):]), settings.storage.group_commit_ms,
                           shared=role is not None and role.shared,
                           account_changes=role.account_changes if role else None)
    try:
        from gateway.storage.postgres import PostgresStore
    except ImportError as exc:
        raise ConfigError(settings.source, "storage.url",
                          "PostgreSQL needs asyncpg: pip install 'acme-gateway[postgres]'"
                          ) from exc
    return PostgresStore(url, settings.storage.pool_size, settings.storage.password)


def serves_many_nodes(settings: Settings) -> bool:
    """True when the store is one that several gateway nodes share (PostgreSQL)."""
    return not settings.storage_url().startswith("sqlite:///")


def connector_site(settings: Settings) -> Site:
    """What every connector is told about this deployment."""
    many = serves_many_nodes(settings)
    return Site(settings.server.data_dir, settings.server.pkix_base_url(),
                settings.storage_url() if many else "",
                settings.storage.password if many else None)


def est_overview(settings: Settings) -> dict[str, list[dict[str, str]]]:
    """EST labels and users as the console lists them (never a password hash)."""
    est = parse_est(settings)
    labels = [{"label": name or "(default)", "profile": lab.profile, "auth": lab.auth,
               "users": (", ".join(lab.users) or "any configured user") if lab.wants_basic
               else "-",
               "names": ", ".join(lab.names) or "-"} for name, lab in sorted(est.labels.items())]
    users = [{"user": u.name, "names": ", ".join(u.names) or "the label's"}
             for u in sorted(est.users.values(), key=lambda u: u.name)]
    return {"labels": labels, "users": users}


def build_connectors(settings: Settings) -> dict[str, Connector]:
    """One connector per ``[cas.NAME]``; a bad table stops the start naming the key."""
    built = {}
    site = connector_site(settings)
    for name, ca in settings.cas.items():
        try:
            built[name] = registry.build(ca.type, name, ca.options, site)
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
    await open_store(store, settings)
    await store.close()
    for name, connector in build_connectors(settings).items():
        if await start_connector(name, connector):
            await connector.aclose()
    prepare_scep(settings)  # the RA key, made once rather than by each worker


async def open_store(store: Store, settings: Settings) -> None:
    """Open the store; a failure ends the start with one line naming ``[storage] url``."""
    try:
        await store.open()
    except (OSError, sqlite3.Error) as exc:
        raise StartError(f"[storage] url {settings.storage_url()}: cannot open the store: "
                         f"{exc}; check the path and the gateway user's permissions") from None


async def start_connector(name: str, connector: Connector) -> bool:
    """Start a connector that needs it (key, token, client certificate); True if it did.

    A failure ends the start with one line naming the CA's table.
    """
    start = getattr(connector, "start", None)
    if start is None:
        return False
    try:
        await start()
    except (ConnectorError, OSError) as exc:
        text = str(exc)
        prefix = "" if text.startswith(f"[cas.{name}]") else f"[cas.{name}] "
        raise StartError(f"{prefix}{text}") from None
    return True


def create_app(settings: Settings, *, clock: Clock | None = None,
               validator: Validator | None = None,
               connectors: Mapping[str, Connector] | None = None,
               role: ProcessRole | None = None,
               nonces: Nonces | None = None) -> web.Application:
    """The gateway application; tests may inject a clock, validator or connectors.

    ``role`` and ``nonces`` are given by ``serve --workers N``: which process
    this is, and the nonce store all of them share.
    """
    app = web.Application(client_max_size=DEFAULT_MAX_BODY, middlewares=[request_context])
    app[keys.SETTINGS] = settings
    # Nodes sharing a PostgreSQL store share nonces through it (so do their workers).
    node_nonces = (NodeNonces(settings.acme.nonce_lifetime_seconds)
                   if serves_many_nodes(settings) else None)
    app[keys.NONCES] = node_nonces or nonces or NonceService(
        settings.acme.nonce_lifetime_seconds)
    chosen = dict(connectors) if connectors is not None else build_connectors(settings)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        pki = app[keys.METRICS].pki
        async with _Resources(settings, metered_connectors(chosen, pki), validator, clock,
                              role, node_nonces) as core:
            core.audit.observer = pki.observe
            app[keys.CORE] = core
            yield

    app.cleanup_ctx.append(resources)
    # CRLs and OCSP of the CAs that publish their own (the local CA), at the URLs
    # written into the certificates it issues.
    app[keys.PKIX_SERVICE] = PkixService(chosen)
    add_pkix_routes(app)
    if settings.admin.token:  # no token configured: no admin surface at all
        app.add_subapp("/admin/", admin_app(settings.admin.token, est_overview(settings)))
    metrics = app[keys.METRICS] = Metrics(lambda: _in_flight(app),
                                          shared_dir=role.metrics_dir if role else None,
                                          ca_states=lambda: _ca_states(app),
                                          database=lambda: _database_stats(app))
    app[keys.CONNECTIONS] = ConnectionBudget(
        Caps(settings.server.max_connections, settings.server.max_connections_per_address),
        metrics)
    app.cleanup_ctx.append(metrics.publishing)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    acme.add_routes(app)  # on this router: no sub-application to resolve through
    app.add_subapp("/.well-known/est/", est_app(settings))
    scep = scep_app(settings)
    app[keys.SCEP_GATES] = {name: label.gate for name, label in scep[SCEP_SETTINGS].labels.items()}
    app.add_subapp("/scep/", scep)
    # Clients configured with the bare directory path land on the real one.
    app.router.add_get("/directory", directory_redirect)
    return app


async def directory_redirect(request: web.Request) -> web.Response:
    """/directory → /acme/directory, for clients configured with the bare path."""
    raise web.HTTPMovedPermanently("/acme/directory")


@web.middleware
async def request_context(request: web.Request, handler: Any) -> web.StreamResponse:
    """Source address and a request id for the audit events this request causes.

    Every path under /acme/ is answered through :func:`gateway.acme.routes.answer`
    (problem documents, nonces), whether a route matched or aiohttp refuses it.
    Other refusals that no front end rendered (a path under the EST root that
    matched none of its routes; a body over the default limit on another route)
    are answered here in the wire form of the path's front end.
    """
    info = audit.RequestInfo(audit.new_request_id(), request.remote or "")
    token = audit.CURRENT_REQUEST.set(info)
    try:
        path = request.path
        if path.startswith("/acme/"):  # front_end's first prefix, the busiest, at once
            return await acme.answer(request, handler)
        name = front_end(path)
        if name not in _OWN_BODY_LIMITS:
            within_limit(request, DEFAULT_MAX_BODY)  # refuses a Content-Length over it
        return await handler(request)  # type: ignore[no-any-return]
    except web.HTTPException as exc:
        refusal = _refusal(request, exc) if exc.status >= 400 else None
        if refusal is None:
            raise
        return refusal
    except GatewayError as exc:  # e.g. a stalled body on a route outside the front ends
        return web.Response(status=problems.STATUS[exc.kind], text=exc.detail + "\n")
    finally:
        audit.CURRENT_REQUEST.reset(token)


def _refusal(request: web.Request, exc: web.HTTPException) -> web.StreamResponse | None:
    """An HTTP refusal in the form of the front end the path belongs to (None: aiohttp's)."""
    name = front_end(request.path)
    if name == "acme" or request.path == "/acme":
        return acme.acme_refusal(request, exc)
    if name == "est":
        return est_http_error(exc)
    if name == "scep":
        return scep_http_error(exc)
    return None


def _in_flight(app: web.Application) -> dict[str, int]:
    figures = {"connections_open": app[keys.CONNECTIONS].open}
    core = app.get(keys.CORE)
    if core is not None:
        figures.update(validations_in_flight=core.validations.in_flight,
                       ca_jobs_in_flight=core.issuance.in_flight)
    return figures


def _database_stats(app: web.Application) -> DatabaseStats | None:
    core = app.get(keys.CORE)
    return core.pruner.stats if core is not None else None


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers, and says which version it runs."""
    return web.json_response({"status": "ok", "version": version()})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database answers and every CA is up (per its last probe or call).

    The body gives the database's state and each CA's; the database is checked
    at most once a second whoever asks (``gateway.core.readiness``).
    """
    core = request.app[keys.CORE]
    database = await core.database.state()
    health = core.ready()
    ok = database["state"] == "up" and all(v["state"] == "up" for v in health.values())
    return web.json_response(
        {"status": "ok" if ok else "degraded", "database": database, "cas": health},
        status=200 if ok else 503)


def _ca_states(app: web.Application) -> dict[str, dict[str, Any]]:
    core = app.get(keys.CORE)
    return core.ready() if core is not None else {}


class _Resources:
    """Opens store, connectors, validator and core in order; closes them in reverse."""

    def __init__(self, settings: Settings, connectors: dict[str, Connector],
                 validator: Validator | None, clock: Clock | None,
                 role: ProcessRole | None = None, node_nonces: NodeNonces | None = None) -> None:
        self.settings = settings
        self.node_nonces = node_nonces
        # Jobs are leased when other processes or nodes may run them (see IssuanceService).
        self.role = (replace(role or ProcessRole(), other_nodes=True)
                     if serves_many_nodes(settings) else role)
        self.connectors = connectors
        self.validator = validator
        self.clock = clock
        self.store: Store | None = None
        self.core: Core | None = None
        self.started: list[Any] = []

    async def __aenter__(self) -> Core:
        try:
            return await self._open()
        except BaseException:
            await self.__aexit__()  # what opened before the failure: no thread left behind
            raise

    async def _open(self) -> Core:
        store = build_store(self.settings, self.role)
        await open_store(store, self.settings)
        self.store = store
        if self.node_nonces is not None:
            await self.node_nonces.start(cast(NonceLedger, store))
        for name, connector in self.connectors.items():
            await start_connector(name, connector)
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
        if self.node_nonces is not None:
            await self.node_nonces.stop()
        if self.store is not None:
            await self.store.close()
