"""The ``acme-gateway`` command: serve, check-config, and operator subcommands."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import ssl
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway import config
from gateway.acme.nonces import Nonces
from gateway.core.role import ProcessRole
from gateway.errors import ConfigError, StartError

log = logging.getLogger("gateway")
# Allocations between two young-generation collections while serving (see _serve).
GC_YOUNG_THRESHOLD = 10_000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acme-gateway",
                                     description="ACME and EST gateway in front of existing CAs")
    parser.add_argument("--config", type=Path, default=None,
                        help="TOML config file (default: embedded defaults in ./gateway-data)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                       help="TOML config file")
    serve.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                       help="processes sharing the port (SO_REUSEPORT) and the store "
                            "(default 1)")
    check = sub.add_parser("check-config", help="validate the config and exit")
    check.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="TOML config file")
    check.add_argument("--probe", action="store_true",
                       help="also open every key, secret, token and CA endpoint the config "
                            "names, one line each (exit status 1 if any fails)")
    try:
        from gateway import cli_ca
    except ImportError:  # the CA tooling is optional in slim builds
        pass
    else:
        cli_ca.add_subcommands(sub)
    from gateway import cli_admin

    cli_admin.add_subcommands(sub)
    from gateway import cli_db

    cli_db.add_subcommands(sub)
    from gateway.est import cli as est_cli

    est_cli.add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script and of ``python -m gateway``."""
    args = _parser().parse_args(argv)
    try:
        settings = config.load(args.config)
        if args.command == "check-config":
            return check_config(settings, args.probe)
        if args.command == "serve":
            return serve(settings, args.workers)
        handler = getattr(args, "handler", None)
        if handler is None:
            return 2
        return int(handler(args, settings) or 0)
    except ConfigError as exc:
        print(f"acme-gateway: configuration error: {exc}", file=sys.stderr)
        return 2


def check_config(settings: config.Settings, probe: bool) -> int:
    """Validate the config; with ``probe``, also open what it names (see gateway.probe)."""
    from gateway.app import build_connectors
    from gateway.est.settings import parse as parse_est

    parse_est(settings)
    if not probe:
        build_connectors(settings)
        print(f"{settings.source}: OK")
        return 0
    from gateway.probe import probe as run_probe

    findings = asyncio.run(run_probe(settings))
    for finding in findings:
        print(finding.line(), flush=True)
    failed = sum(f.problem is not None for f in findings)
    print(f"{settings.source}: {'OK' if not failed else f'{failed} of {len(findings)} FAILED'}")
    return 1 if failed else 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of processes ≥ 1, got {value}")
    return value


def serve(settings: config.Settings, workers: int = 1) -> int:
    """Run the gateway until SIGINT/SIGTERM: one process, or ``workers`` forked ones."""
    from gateway import logging as gwlogging

    gwlogging.setup(settings.server.log_level)
    if workers == 1:
        return _run(settings, ProcessRole(), None)
    from gateway import tls
    from gateway.listeners import check_port_free
    from gateway.supervisor import supervise

    server = settings.server
    try:
        for key, port in (("https_port", server.https_port), ("http_port", server.http_port)):
            if port:
                check_port_free(server, port, key)
        if server.https_port and server.tls_cert_file is None:
            tls.ensure_self_signed(server)  # once, before the workers look for it
        if server.https_port:
            tls.https_context(server)  # fails here once, not in every worker
        return supervise(settings, workers, lambda role, nonces: _run(settings, role, nonces))
    except StartError as exc:
        return start_failed(exc)


def _run(settings: config.Settings, role: ProcessRole, nonces: Nonces | None) -> int:
    """One serving process, on uvloop when available; a failed start is one line on stderr."""
    try:
        try:
            import uvloop
        except ImportError:  # uvloop is a dependency; this only guards odd platforms
            return asyncio.run(_serve(settings, role, nonces))
        return uvloop.run(_serve(settings, role, nonces))
    except StartError as exc:
        return start_failed(exc)


def start_failed(exc: StartError) -> int:
    """Say why the gateway cannot start, in one line; the exit status that says so."""
    print(f"acme-gateway: cannot start: {exc}", file=sys.stderr, flush=True)
    return StartError.EXIT_STATUS


async def _serve(settings: config.Settings, role: ProcessRole, nonces: Nonces | None) -> int:
    from gateway.app import create_app
    from gateway.listeners import raise_descriptor_limit

    server = settings.server
    app = create_app(settings, role=role, nonces=nonces)
    options = _handler_options(app, settings)
    runner = web.AppRunner(app, handle_signals=False, **options,
                           shutdown_timeout=server.shutdown_timeout_seconds)
    try:
        await runner.setup()
        urls = await _listen(runner, app, settings, role, options)
    except BaseException:
        await runner.cleanup()
        raise
    raise_descriptor_limit(server.max_connections)
    if role.primary:
        _print_banner(settings, urls)
    if role.shared:
        log.info("worker %d of %d serving", role.index + 1, role.count)
    # Everything made at start-up lives for the whole run: moving it out of the
    # collector's generations shortens the GC pauses that show up in tail latency.
    gc.freeze()
    # Under load the requests in flight keep a few thousand objects alive, and the
    # default young-generation threshold (700 allocations) re-examined all of them
    # about every tenth of an order: ~2 % of the CPU per certificate at 64 orders in
    # flight. Request garbage is freed by reference counting anyway; a larger
    # threshold collects cycles as surely, 14 times less often.
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()
    return 0


def _print_banner(settings: config.Settings, urls: list[str]) -> None:
    """What a new operator needs first: trust anchors, CA fingerprints, URLs, data and logs."""
    from gateway import banner, tls

    server = settings.server
    cert = tls.server_cert_paths(server)[0] if server.https_port else None
    print(banner.render(settings, urls, cert, server.tls_cert_file is None), flush=True)


def _handler_options(app: web.Application, settings: config.Settings) -> dict[str, Any]:
    """aiohttp's per-connection options: the access log, which also feeds /metrics."""
    from gateway import keys
    from gateway.logging import AccessLogger

    access = logging.getLogger("gateway.access")
    if not settings.server.access_log:
        access.setLevel(logging.WARNING)  # no lines; the logger still feeds /metrics
    return {"access_log_class": AccessLogger.counting_into(app[keys.METRICS]),
            "access_log": access}


async def _listen(runner: web.AppRunner, app: web.Application, settings: config.Settings,
                  role: ProcessRole, options: dict[str, Any]) -> list[str]:
    """Open the configured listeners; return their URLs."""
    from gateway import keys
    from gateway.listeners import GuardedSite, listen
    from gateway.protocol import Timeouts, handler_factory

    server = settings.server
    assert runner.server is not None
    timeouts = Timeouts(server.header_timeout_seconds, server.body_timeout_seconds,
                        server.keepalive_timeout_seconds)
    handshake = server.tls_handshake_timeout_seconds
    urls = []
    ports = [("https_port", server.https_port, True), ("http_port", server.http_port, False)]
    for key, port, secure in ports:
        if not port:
            continue
        ctx = await _tls_context(app, server) if secure else None
        factory = handler_factory(runner.server, app[keys.CONNECTIONS], timeouts,
                                  handshake if secure else None, **options)
        await listen(GuardedSite(runner, factory, server.listen, port, ssl_context=ctx,
                                 handshake_timeout=handshake,
                                 reuse_port=role.shared or None), key)
        urls.append(f"{'https' if secure else 'http'}://{_host(server.listen)}:{port}")
    return urls


async def _tls_context(app: web.Application, server: config.ServerSettings) -> ssl.SSLContext:
    """The HTTPS context, asking for client certificates from every EST anchor."""
    from gateway import tls
    from gateway.est.trust import client_ca_pem

    if server.tls_cert_file is None:
        tls.ensure_self_signed(server)
    return tls.https_context(server, await client_ca_pem(app))


def _host(listen: str) -> str:
    return f"[{listen}]" if ":" in listen else listen
