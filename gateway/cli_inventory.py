"""Operator subcommands for the certificate inventory and ACME accounts.

``certs list|show|revoke`` and ``accounts list|deactivate``, each with ``--json``
(the admin API's JSON). Like the other operator commands they work on the
store directly, through the same core services as the admin API, so every
action is audited the same way; ``certs revoke`` also opens the certificate's
CA connector, as the server does.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gateway.admin import render
from gateway.admin.query import FIELDS, certificate_query, period
from gateway.audit import AuditTrail
from gateway.cli_admin import login_name, subcommand
from gateway.config import Settings
from gateway.core.inventory import InventoryService, IssuedCertificate
from gateway.core.revocation import REASON_NAMES, RevocationService
from gateway.core.tasks import OperatorTasks
from gateway.model.clock import SystemClock
from gateway.model.store import Store


def add_subcommands(subparsers: Any) -> None:
    """``certs`` and ``accounts`` under the top-level subparsers."""
    certs = subparsers.add_parser("certs", help="the certificate inventory: search, show, revoke")
    certs_sub = certs.add_subparsers(dest="certs_command", required=True)
    listing = subcommand(certs_sub, "list", "certificates matching a search, newest first "
                         "(soonest expiry first with an expiry bound)", certs_list)
    for field in FIELDS:
        listing.add_argument(f"--{field.replace('_', '-')}", dest=field, default="",
                             help=_FIELD_HELP.get(field, ""))
    _json_flag(listing)
    show = subcommand(certs_sub, "show", "one certificate with its chain and audit history",
                      certs_show)
    show.add_argument("ref", help="certificate id or serial (hex, colons allowed)")
    _json_flag(show)
    revoke = subcommand(certs_sub, "revoke", "revoke at the CA (OCSP and CRL answer at once "
                        "for the local CA)", certs_revoke)
    revoke.add_argument("ref", help="certificate id or serial")
    revoke.add_argument("--reason", default="unspecified", choices=sorted(REASON_NAMES),
                        help="RFC 5280 reason (default unspecified)")
    revoke.add_argument("--approver", default="", help="who revokes (default: login name)")
    _json_flag(revoke)
    accounts = subparsers.add_parser("accounts", help="ACME accounts: list, deactivate")
    acc_sub = accounts.add_subparsers(dest="accounts_command", required=True)
    acc_list = subcommand(acc_sub, "list", "ACME accounts, newest first", accounts_list)
    acc_list.add_argument("--status", default="", choices=["", "valid", "deactivated", "revoked"])
    acc_list.add_argument("--limit", type=int, default=100)
    _json_flag(acc_list)
    deact = subcommand(acc_sub, "deactivate", "deactivate an account for good",
                       accounts_deactivate)
    deact.add_argument("id", help="the account id")
    deact.add_argument("--approver", default="", help="who acts (default: login name)")
    _json_flag(deact)
    comp = subcommand(subparsers, "compliance", "each issuance of a period judged by the "
                      "policy recorded with it (CSV or JSON for export)", compliance_report)
    comp.add_argument("--since", default="", help="start, ISO date or date-time (UTC)")
    comp.add_argument("--until", default="", help="end (exclusive), ISO date or date-time")
    comp.add_argument("--format", default="text", choices=["text", "csv", "json"])


_FIELD_HELP = {
    "name": "part of a name the certificate was ordered for",
    "serial": "serial number in hex", "account": "requester: ACME account id or EST user",
    "state": "valid, revoked or expired", "expires_after": "ISO date or date-time (UTC)",
    "expires_before": "ISO date or date-time (UTC), exclusive",
    "expires_within_days": "not after within this many days from now",
    "limit": "at most this many (1-1000, default 100)",
}


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="the admin API's JSON")


def _inventory(store: Store, settings: Settings, connectors: Any = None) -> InventoryService:
    clock = SystemClock()
    trail = AuditTrail(store, clock)
    revocation = RevocationService(store, clock, connectors or {}, trail,
                                   OperatorTasks(store, clock, trail))
    return InventoryService(store, clock, trail, revocation, settings.audit.max_validity_days)


def _emit(args: argparse.Namespace, value: Any, text: str) -> int:
    print(json.dumps(value, indent=2) if args.json else text)
    return 0


def _line(issued: IssuedCertificate) -> str:
    c = render.certificate(issued)
    return (f"{c['serial']:<40} {c['state']:<8} expires {c['not_after']}  {c['profile']:<10} "
            f"{c['ca']:<10} {c['requester']:<30} {', '.join(c['names'])}")


async def certs_list(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``certs list``: a search, one line per certificate."""
    params = {f: getattr(args, f) for f in FIELDS if getattr(args, f)}
    inventory = _inventory(store, settings)
    found = await inventory.find(certificate_query(params, inventory.clock.now()))
    text = "\n".join(_line(i) for i in found) or "no certificate matches"
    return _emit(args, [render.certificate(i) for i in found], text)


async def certs_show(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``certs show REF``."""
    record = render.certificate_record(await _inventory(store, settings).record(args.ref))
    facts = [f"{k + ':':<18} {v}" for k, v in record.items()
             if k not in ("history", "chain_pem") and v not in (None, [])]
    history = [f"  {h['at']}  {h['event']:<16} {h['actor']:<24} {h['result']}  {h['detail']}"
               for h in record["history"]]
    text = "\n".join([*facts, "history:", *history, record["chain_pem"].rstrip()])
    return _emit(args, record, text)


async def certs_revoke(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``certs revoke REF --reason NAME``: through the certificate's CA connector."""
    from gateway.app import build_connectors, start_connector

    issued = await _inventory(store, settings).certificate(args.ref)
    ca = issued.certificate.ca
    connectors = {k: v for k, v in build_connectors(settings).items() if k == ca}
    for name, connector in connectors.items():
        await start_connector(name, connector)
    try:
        revoked = await _inventory(store, settings, connectors).revoke(
            issued.certificate.id, args.reason, f"cli:{args.approver or login_name()}")
    finally:
        for connector in connectors.values():
            await connector.aclose()
    return _emit(args, render.certificate(revoked),
                 f"{revoked.certificate.serial}: revoked ({args.reason})")


async def accounts_list(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``accounts list``."""
    found = await _inventory(store, settings).accounts(args.status, args.limit)
    lines = [f"{a['id']}  {a['status']:<11} created {a['created']}  "
             f"{', '.join(a['contact']) or '-'}  eab {a['eab_kid'] or '-'}"
             for a in map(render.account, found)]
    return _emit(args, [render.account(a) for a in found],
                 "\n".join(lines) or "no ACME account")


async def accounts_deactivate(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``accounts deactivate ID``."""
    account = await _inventory(store, settings).deactivate_account(
        args.id, f"cli:{args.approver or login_name()}")
    print("a running gateway refuses the account within 5 seconds (the time it keeps an "
          "account in memory)", file=sys.stderr)
    return _emit(args, render.account(account), f"{account.id}: deactivated")


async def compliance_report(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``compliance``: one line (CSV row, JSON object) per issuance; exit 1 on a violation."""
    since, until = period({"since": args.since, "until": args.until})
    verdicts = await _inventory(store, settings).compliance(since, until)
    if args.format == "csv":
        sys.stdout.write(render.compliance_csv(verdicts))
    elif args.format == "json":
        print(json.dumps([render.verdict(v) for v in verdicts], indent=2))
    else:
        for v in verdicts:
            print(f"{render.when(v.issued_at)}  {v.serial:<40} {v.profile:<10} {v.verdict:<9} "
                  f"{'; '.join(v.violations) or '-'}")
        bad = sum(1 for v in verdicts if v.violations)
        print(f"{len(verdicts)} issuance(s), {bad} with violations")
    return 1 if any(v.violations for v in verdicts) else 0
