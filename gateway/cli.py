"""The ``acme-gateway`` command: serve, check-config, and operator subcommands."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web

from gateway import config
from gateway.acme.nonces import Nonces
from gateway.core.role import ProcessRole
from gateway.errors import ConfigError

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
    try:
        from gateway import cli_ca
    except ImportError:  # the CA tooling is optional in slim builds
        pass
    else:
        cli_ca.add_subcommands(sub)
    from gateway import cli_admin

    cli_admin.add_subcommands(sub)
    from gateway.est import cli as est_cli

    est_cli.add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script and of ``python -m gateway``."""
    args = _parser().parse_args(argv)
    try:
        settings = config.load(args.config)
        if args.command == "check-config":
            from gateway.app import build_connectors
            from gateway.est.settings import parse as parse_est

            build_connectors(settings)
            parse_est(settings)
            for warning in config.warnings(settings):
                print(f"warning: {warning}", file=sys.stderr)
            print(f"{settings.source}: OK")
            return 0
        if args.command == "serve":
            return serve(settings, args.workers)
        handler = getattr(args, "handler", None)
        if handler is None:
            return 2
        return int(handler(args, settings) or 0)
    except ConfigError as exc:
        print(f"acme-gateway: configuration error: {exc}", file=sys.stderr)
        return 2


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
    from gateway.supervisor import supervise

    if settings.server.https_port and settings.server.tls_cert_file is None:
        tls.ensure_self_signed(settings.server)  # once, before the workers look for it
    return supervise(settings, workers, lambda role, nonces: _run(settings, role, nonces))


def _run(settings: config.Settings, role: ProcessRole, nonces: Nonces | None) -> int:
    """One serving process, on uvloop when available."""
    try:
        import uvloop
    except ImportError:  # uvloop is a dependency; this only guards odd platforms
        return asyncio.run(_serve(settings, role, nonces))
    return uvloop.run(_serve(settings, role, nonces))


async def _serve(settings: config.Settings, role: ProcessRole, nonces: Nonces | None) -> int:
    from gateway import tls
    from gateway.app import create_app
    from gateway.est.trust import client_ca_pem
    from gateway.logging import AccessLogger

    app = create_app(settings, role=role, nonces=nonces)
    access = logging.getLogger("gateway.access")
    if not settings.server.access_log:
        access.setLevel(logging.WARNING)  # no lines; the logger still feeds /metrics
    runner = web.AppRunner(app, handle_signals=False, access_log_class=AccessLogger,
                           access_log=access,
                           shutdown_timeout=settings.server.shutdown_timeout_seconds)
    await runner.setup()
    server = settings.server
    urls = []
    if server.https_port:
        cert = tls.ensure_self_signed(server) if server.tls_cert_file is None else None
        ctx = tls.server_context(server, client_ca_data=await client_ca_pem(app))
        await web.TCPSite(runner, server.listen, server.https_port, ssl_context=ctx,
                          reuse_port=role.shared or None).start()
        urls.append(f"https://{_host(server.listen)}:{server.https_port}")
        if cert is not None and role.primary:
            print(f"HTTPS certificate (self-signed): {cert.resolve()}\n"
                  f"  trust it with REQUESTS_CA_BUNDLE={cert.resolve()} (certbot) or "
                  f"LEGO_CA_CERTIFICATES={cert.resolve()} (lego)", flush=True)
    if server.http_port:
        await web.TCPSite(runner, server.listen, server.http_port,
                          reuse_port=role.shared or None).start()
        urls.append(f"http://{_host(server.listen)}:{server.http_port}")
    from gateway import pkix_listener

    pkix_runner = await pkix_listener.start(app, server, role.shared)
    for url in urls if role.primary else ():
        print(f"ACME directory: {url}/acme/directory", flush=True)
        print(f"EST base:       {url}/.well-known/est/", flush=True)
    if pkix_runner is not None and role.primary:
        print(f"CRL/OCSP:       {server.pkix_base_url()}/pkix/ (plain HTTP)", flush=True)
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
    if pkix_runner is not None:
        await pkix_runner.cleanup()
    return 0


def _host(listen: str) -> str:
    return f"[{listen}]" if ":" in listen else listen
