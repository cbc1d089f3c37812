"""``acme-gateway renewal``: which certificates are due, and the incident lever.

``renewal list`` shows live certificates with their suggested renewal windows
(``--due``: only those whose holders should renew now; ``--est``: only EST
devices, i.e. which devices must re-enroll). ``renewal advance`` moves the
windows of the selected certificates into the past, so ACME clients that ask
for renewal information (RFC 9773) renew at once; every moved certificate is
an audit event.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from gateway.audit import AuditTrail
from gateway.cli_admin import _sub, _when, login_name
from gateway.config import Settings
from gateway.core.renewals import RenewalService, Selection
from gateway.model.clock import SystemClock
from gateway.model.store import Store


def add_subcommands(subparsers: Any) -> None:
    """Add ``renewal list`` and ``renewal advance``."""
    renewal = subparsers.add_parser("renewal", help="renewal windows (ACME ARI) and advancing "
                                                    "them after an incident")
    sub = renewal.add_subparsers(dest="renewal_command", required=True)
    listing = _sub(sub, "list", "live certificates and when they should be renewed",
                   renewal_list)
    listing.add_argument("--due", action="store_true", help="only those due for renewal now")
    listing.add_argument("--est", action="store_true", help="only EST devices' certificates")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    advance = _sub(sub, "advance", "ask holders of the selected certificates to renew now",
                   renewal_advance)
    advance.add_argument("--ca", help="certificates of this CA")
    advance.add_argument("--profile", help="certificates issued under this profile")
    advance.add_argument("--name", action="append", default=[], metavar="PATTERN",
                         help="certificates for a matching name: glob or re:REGEX (repeatable)")
    advance.add_argument("--serial", action="append", default=[], metavar="HEX",
                         help="a certificate serial number in hex (repeatable)")
    advance.add_argument("--issued-before", type=_when, metavar="DATE",
                         help="certificates issued before this ISO date or date-time (UTC)")
    advance.add_argument("--reason", required=True, help="why, recorded in the audit trail")
    advance.add_argument("--explanation-url", default="",
                         help="a page clients are shown (default: [acme] "
                              "renewal_explanation_url)")


def _service(settings: Settings, store: Store) -> RenewalService:
    clock = SystemClock()
    return RenewalService(settings, store, clock, AuditTrail(store, clock))


async def renewal_list(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``renewal list [--due] [--est]``."""
    items = await _service(settings, store).schedule(due_only=args.due, est_only=args.est)
    rows = [i.summary() for i in items]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no live certificate matches" if not args.due else "no certificate is due")
    for r in rows:
        print(f"{r['serial']}  renew {r['window_start']} .. {r['window_end']}  expires "
              f"{r['not_after']}  {r['requester']}  {','.join(r['identifiers'])}")
    return 0


async def renewal_advance(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``renewal advance``: windows of the selected certificates move into the past."""
    selection = Selection(ca=args.ca, profile=args.profile, names=tuple(args.name),
                          serials=tuple(args.serial), issued_before=args.issued_before)
    moved = await _service(settings, store).advance(
        selection, actor=f"cli:{login_name()}", reason=args.reason,
        explanation_url=args.explanation_url)
    for cert in moved:
        print(f"{cert.serial}  {cert.ca}  advanced")
    print(f"{len(moved)} certificate(s) advanced: ACME clients that check renewal "
          f"information renew at their next check (within "
          f"{settings.acme.renewal_info_retry_after_seconds} s); EST devices: "
          "`acme-gateway renewal list --due --est`")
    return 0
