"""``acme-gateway scep otp``: a one-time SCEP challenge password, as an NDES admin page gives.

The password is printed once on standard output; only its SHA-256 is stored.
It enrolls one device on the label, for the label's names and those given with
``--name``, until it is used or ``otp_lifetime_seconds`` pass.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway import audit
from gateway.cli_admin import login_name, store_subcommand
from gateway.config import Settings, name_patterns
from gateway.config_table import Table
from gateway.core.scep import OtpIssuer
from gateway.model.clock import SystemClock
from gateway.model.store import Store
from gateway.scep.settings import parse


def add_subcommands(subparsers: Any) -> None:
    """Add ``scep`` and its subcommands to the top-level subparsers of ``acme-gateway``."""
    scep = subparsers.add_parser("scep", help="SCEP operator tools")
    scep_sub = scep.add_subparsers(dest="scep_command", required=True)
    otp = store_subcommand(scep_sub, "otp", "print a one-time challenge password for a label",
                           issue_otp)
    otp.add_argument("--label", required=True, help="a [scep.labels.NAME] with "
                     "one_time_passwords = true")
    otp.add_argument("--name", action="append", default=[], dest="names",
                     help="a name (glob or 're:' pattern) the device may request; repeatable")


async def issue_otp(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``scep otp --label NAME [--name PATTERN]...``."""
    label = parse(settings).labels.get(args.label)
    if label is None or not label.gate.one_time_passwords:
        print(f"acme-gateway: [scep.labels.{args.label}] does not exist or does not set "
              "one_time_passwords = true", file=sys.stderr)
        return 2
    names = _names(settings, args.names)
    if not names and not label.gate.names:
        print("acme-gateway: the label binds no names; give the device its names with "
              "--name", file=sys.stderr)
        return 2
    clock = SystemClock()
    issuer = OtpIssuer(store, clock, audit.AuditTrail(store, clock))
    print(await issuer.issue(label.gate, names, actor=f"cli:{login_name()}"))
    return 0


def _names(settings: Settings, given: list[str]) -> tuple[str, ...]:
    return name_patterns(Table(settings.source, "--name", {"name": given}), "name")
