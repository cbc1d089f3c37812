"""``acme-gateway ca init | import-cert | info | status``: operate the local CA, probe all CAs.

``ca init`` creates the CA key (in a file, or non-extractable in a PKCS#11
token) and either a self-signed CA certificate or, with ``--csr``, a request
for an external root; ``ca import-cert`` installs what the root signed;
``ca info`` shows the chain, where the key lives and what the CA has done.
``ca status`` starts and probes every configured CA (of any type), and counts
the jobs waiting on each in the database; exit code 1 when one is down.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509

from connectors.base import CAConfigError, ConnectorError
from connectors.localca.admin import CAInfo, describe, fingerprint, import_certificate, init_ca
from connectors.localca.root import renew_root_crl
from connectors.localca.settings import LocalCASettings
from gateway.config import Settings


def add_subcommands(subparsers: Any) -> None:
    """Add ``ca`` and its subcommands to the top-level subparsers of ``acme-gateway``."""
    ca = subparsers.add_parser("ca", help="create and inspect the local CA")
    ca_sub = ca.add_subparsers(dest="ca_command", required=True)
    init = _sub(
        ca_sub, "init", "create the CA key and a self-signed certificate (or a CSR)", handle_init
    )
    init.add_argument("--csr", action="store_true", help="write a CSR for an external root instead")
    init.add_argument("--force", action="store_true", help="replace an existing CA certificate")
    imp = _sub(
        ca_sub, "import-cert", "install the CA certificate an external root signed", handle_import
    )
    imp.add_argument(
        "certificate", type=Path, help="PEM file: the CA certificate, optionally its chain"
    )
    imp.add_argument("--chain", type=Path, help="PEM file with the chain above the CA certificate")
    _sub(ca_sub, "info", "show the CA chain, key location and counts", handle_info)
    _sub(ca_sub, "root-crl", "sign the two-tier root's CRL anew (opens the root key)",
         handle_root_crl)
    status = ca_sub.add_parser("status", help="probe every configured CA; jobs waiting on each")
    status.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="TOML config file")
    status.set_defaults(handler=handle_status)


def _sub(parent: Any, name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = parent.add_parser(name, help=help_text)
    # SUPPRESS: a --config given before the subcommand is not overwritten by a default here.
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="TOML config file")
    parser.add_argument(
        "--ca", default="local", help="name of the [cas.NAME] table (default: local)"
    )
    parser.set_defaults(handler=handler)
    return parser


def local_ca_settings(settings: Settings, name: str) -> LocalCASettings:
    """The local CA ``name`` of the gateway config, built exactly as the server builds it."""
    ca = settings.cas.get(name)
    if ca is None:
        raise CAConfigError(
            f"{settings.source}: no [cas.{name}]; configured: {', '.join(settings.cas) or 'none'}"
        )
    if ca.type != "local":
        raise CAConfigError(
            f"[cas.{name}] is of type {ca.type!r}; these commands manage local CAs only"
        )
    options = dict(ca.options)
    options.setdefault("public_base_url", settings.server.pkix_base_url())
    return LocalCASettings.from_options(options, settings.server.data_dir, name)


def _run(args: argparse.Namespace, settings: Settings, action: Any) -> int:
    try:
        ca_settings = local_ca_settings(settings, args.ca)
        return int(asyncio.run(action(ca_settings)))
    except CAConfigError as exc:
        print(f"acme-gateway ca {args.ca_command}: {exc}", file=sys.stderr)
        return 1


def handle_init(args: argparse.Namespace, settings: Settings) -> int:
    """``ca init``."""

    async def action(ca: LocalCASettings) -> int:
        result = await init_ca(ca, args.ca, csr=args.csr, force=args.force)
        print(f"key: {'created' if result.key_created else 'existing'}, {result.key_location}")
        if result.csr:
            print(f"CSR for the external root: {result.written}")
            hint = f"acme-gateway ca import-cert --ca {args.ca} SIGNED.pem [--chain CHAIN.pem]"
            print(f"when it is signed: {hint}")
        else:
            print(f"self-signed CA certificate: {result.written}")
        return 0

    return _run(args, settings, action)


def handle_import(args: argparse.Namespace, settings: Settings) -> int:
    """``ca import-cert``."""

    async def action(ca: LocalCASettings) -> int:
        try:
            pem = args.certificate.read_bytes()
            chain = args.chain.read_bytes() if args.chain else b""
        except OSError as exc:
            raise CAConfigError(f"cannot read {exc.filename}: {exc.strerror}") from exc
        target = await import_certificate(ca, pem, chain)
        print(f"installed {target}; restart the gateway to use it")
        return 0

    return _run(args, settings, action)


def handle_info(args: argparse.Namespace, settings: Settings) -> int:
    """``ca info``."""

    async def action(ca: LocalCASettings) -> int:
        info = await describe(ca, args.ca)
        print(render_info(info))
        return 0 if info.chain and info.key_status == "ok" else 1

    return _run(args, settings, action)


def render_info(info: CAInfo) -> str:
    """The ``ca info`` text."""
    lines = [
        f"CA {info.name!r}",
        f"  key:      {info.key_location} ({info.key_type}) — {info.key_status}",
    ]
    if not info.chain:
        pending = f"; CSR waiting for a root: {info.pending_csr}" if info.pending_csr else ""
        lines.append(f"  certificate: none (run `acme-gateway ca init --ca {info.name}`){pending}")
    for depth, cert in enumerate(info.chain):
        lines += [
            f"  [{depth}] subject:  {cert.subject.rfc4514_string()}",
            f"      issuer:   {cert.issuer.rfc4514_string()}",
            f"      valid:    {cert.not_valid_before_utc:%Y-%m-%d %H:%M} .. "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
            f"      serial:   {cert.serial_number:x}",
            f"      sha256:   {fingerprint(cert)}",
        ]
    lines.append(f"  CRL:      {info.crl_url or '(no public URL)'}")
    lines.append(f"  OCSP:     {info.ocsp_url or '(no public URL)'}")
    if info.issued is not None:
        lines.append(f"  issued:   {info.issued} certificates, {info.revoked} revoked")
    return "\n".join(lines)


def handle_root_crl(args: argparse.Namespace, settings: Settings) -> int:
    """``ca root-crl``: a fresh CRL from the offline root, before the last one runs out."""

    async def renew(ca_settings: LocalCASettings) -> int:
        path = await renew_root_crl(ca_settings, datetime.now(UTC))
        crl = x509.load_der_x509_crl(path.read_bytes())
        print(f"root CRL: {path} (next update {crl.next_update_utc:%Y-%m-%d %H:%M} UTC)")
        return 0

    return _run(args, settings, renew)


def handle_status(args: argparse.Namespace, settings: Settings) -> int:
    """``ca status``: up or down, since when, why, and jobs waiting, per CA."""
    report = asyncio.run(ca_status(settings))
    for name, state in report.items():
        line = f"{name}: {state['state']}  jobs waiting {state['jobs_waiting']}"
        if state["state"] != "up":
            line += f"\n    {state['last_error']}"
        print(line)
    return 0 if all(s["state"] == "up" for s in report.values()) else 1


async def ca_status(settings: Settings) -> dict[str, dict[str, Any]]:
    """Start and probe every configured CA once; the per-CA report."""
    from gateway.app import build_connectors
    from gateway.core.ca_health import CAHealth, HealthProber
    from gateway.model.clock import SystemClock

    connectors = build_connectors(settings)
    health = CAHealth(connectors, SystemClock(), threshold=0)
    started = {}
    for name, connector in connectors.items():
        try:
            await connector.start()  # type: ignore[attr-defined]
        except ConnectorError as exc:
            health.failed(name, f"cannot start: {exc}")
            continue
        started[name] = connector
    try:
        await HealthProber(started, health, period=0).probe_once()
    finally:
        for connector in started.values():
            await connector.aclose()
    return health.report(await _jobs_waiting(settings))


async def _jobs_waiting(settings: Settings) -> dict[str, int]:
    """Jobs in the database, by the CA of their order's profile."""
    from gateway.app import build_store

    store = build_store(settings)
    await store.open()
    try:
        far = datetime.now(UTC) + timedelta(days=36500)
        counts: Counter[str] = Counter()
        for job in await store.due_jobs(far, 1_000_000):
            order = await store.get_order(job.order_id)
            profile = settings.profiles.get(order.profile) if order else None
            if profile is not None:
                counts[profile.ca] += 1
        return dict(counts)
    finally:
        await store.close()
