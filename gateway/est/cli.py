"""``acme-gateway est hash-password``: make a password hash for ``[est.users]``."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from gateway.config import Settings
from gateway.est.passwords import DEFAULT_ITERATIONS, hash_password


def add_subcommands(subparsers: Any) -> None:
    """Add ``est`` and its subcommands to the top-level subparsers of ``acme-gateway``."""
    est = subparsers.add_parser("est", help="EST operator tools")
    est_sub = est.add_subparsers(dest="est_command", required=True)
    hp = est_sub.add_parser("hash-password",
                            help="print a PBKDF2-SHA256 hash for an [est.users] entry")
    hp.add_argument("--stdin", action="store_true",
                    help="read the password from the first line of standard input")
    hp.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS,
                    help=f"PBKDF2 iterations (default {DEFAULT_ITERATIONS})")
    hp.set_defaults(handler=handle_hash_password)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("acme-gateway: the passwords differ")
    return first


def handle_hash_password(args: argparse.Namespace, settings: Settings) -> int:
    """Read a password (never from the command line, where `ps` shows it) and print its hash."""
    if args.iterations < 1000:
        print("acme-gateway: --iterations must be at least 1000", file=sys.stderr)
        return 2
    password = _read_password(args.stdin)
    if not password:
        print("acme-gateway: empty password", file=sys.stderr)
        return 2
    print(hash_password(password, args.iterations))
    return 0
