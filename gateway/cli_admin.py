"""Operator subcommands: ``eab``, ``approvals``, ``approve``, ``reject``, ``tasks`` and
``audit`` (``verify``, ``report``, ``anchor-key``, ``archive``, ``check-archive``).

They work on the gateway's database directly, through the same Store and core
services as the server (so every action is audited the same way), and may run
while the gateway serves: SQLite serialises the writes, and the server's job
scanner picks up an approved request within ``[jobs] scan_period_seconds``.

Exit codes: 0 done, 1 refused (unknown id, broken audit chain, ...), 2 config error.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway import audit_anchor, audit_archive, audit_report
from gateway.audit import AuditTrail
from gateway.config import Settings
from gateway.core.approvals import ApprovalService, actor_of
from gateway.core.eab import EabService
from gateway.core.tasks import OperatorTasks
from gateway.errors import GatewayError
from gateway.model.clock import SystemClock
from gateway.model.store import Store

Action = Callable[[argparse.Namespace, Settings, Store], Awaitable[int]]


def add_subcommands(subparsers: Any) -> None:
    """Add the operator subcommands to the top-level subparsers of ``acme-gateway``."""
    eab = subparsers.add_parser("eab", help="External Account Binding keys for ACME clients")
    eab_sub = eab.add_subparsers(dest="eab_command", required=True)
    create = _sub(eab_sub, "create", "create a key; prints its key id and HMAC key once",
                  eab_create)
    create.add_argument("--profile", action="append", default=[], metavar="NAME",
                        help="a profile the bound account may use (repeatable; default: all)")
    create.add_argument("--allowed-domains", nargs="+", default=[], metavar="PATTERN",
                        help="domains the account may order: globs (*.example.com) or re:REGEX")
    create.add_argument("--reusable", action="store_true",
                        help="may bind several accounts (default: single use)")
    create.add_argument("--note", default="", help="a free-text note shown by `eab list`")
    _sub(eab_sub, "list", "list keys (never their HMAC keys)", eab_list)
    revoke = _sub(eab_sub, "revoke", "stop a key from binding accounts; bound accounts "
                  "can no longer order", eab_revoke)
    revoke.add_argument("kid", help="the key id")
    _sub(subparsers, "approvals", "list requests waiting for an approver", approvals_list)
    approve = _sub(subparsers, "approve", "release a held request to its CA", approve_request)
    approve.add_argument("id", help="the request id (ACME order id or EST request id)")
    approve.add_argument("--approver", default="", help="who approves (default: login name)")
    reject = _sub(subparsers, "reject", "refuse a held request; the client sees the reason",
                  reject_request)
    reject.add_argument("id", help="the request id")
    reject.add_argument("--reason", required=True, help="shown to the requester")
    reject.add_argument("--approver", default="", help="who rejects (default: login name)")
    _task_subcommands(subparsers)
    _audit_subcommands(subparsers)


def _task_subcommands(subparsers: Any) -> None:
    tasks = subparsers.add_parser("tasks", help="work a person must do at a CA (e.g. revoke "
                                  "in the AD CS console)")
    tasks_sub = tasks.add_subparsers(dest="tasks_command", required=True)
    _sub(tasks_sub, "list", "list open operator tasks", tasks_list)
    done = _sub(tasks_sub, "done", "close a task once done at the CA (a revocation task "
                "records the certificate as revoked)", task_done)
    done.add_argument("id", help="the task id")
    done.add_argument("--note", default="", help="what was done, for the audit trail")


def _audit_subcommands(subparsers: Any) -> None:
    aud = subparsers.add_parser("audit", help="verify and report on the audit trail")
    aud_sub = aud.add_subparsers(dest="audit_command", required=True)
    ver = _sub(aud_sub, "verify", "recompute the hash chain; name changed or removed rows",
               audit_verify)
    ver.add_argument("--anchor", metavar="SEQ:HASH", type=_kept_head,
                     help="also pin a head printed by an earlier verify")
    ver.add_argument("--anchors", metavar="FILE", type=Path,
                     help="check against this copy of the anchor log (e.g. one kept off the "
                          "machine) instead of [audit] anchor_log_file")
    _sub(aud_sub, "anchor-key", "print the anchor key's fingerprint and public key "
         "(creating the key if the gateway has not yet)", audit_anchor_key)
    rep = _sub(aud_sub, "report", "requests, issuance, failures and violations of a period",
               audit_report_cmd)
    rep.add_argument("--since", type=_when, help="start, ISO date or date-time (UTC)")
    rep.add_argument("--until", type=_when, help="end (exclusive), ISO date or date-time (UTC)")
    rep.add_argument("--json", action="store_true", help="machine-readable output")
    arc = _sub(aud_sub, "archive", "move rows written before a date to a signed file "
               "(the chain stays verifiable)", audit_archive_cmd)
    arc.add_argument("--before", type=_when, required=True,
                     help="archive rows written before this ISO date or date-time (UTC)")
    arc.add_argument("--out", type=Path, required=True, help="the archive file (must not exist)")
    chk = _sub(aud_sub, "check-archive", "check an archive file against its signed cut",
               audit_check_archive)
    chk.add_argument("file", type=Path, help="a file written by `audit archive`")


def store_subcommand(parent: Any, name: str, help_text: str,
                     action: Action) -> argparse.ArgumentParser:
    """A subcommand whose ``action`` runs with the configured store open."""
    return _sub(parent, name, help_text, action)


def _sub(parent: Any, name: str, help_text: str, action: Action) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = parent.add_parser(name, help=help_text)
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="TOML config file")
    parser.set_defaults(handler=lambda args, settings: _run(args, settings, action))
    return parser


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date or date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _kept_head(text: str) -> audit_report.Pin:
    try:
        return audit_report.kept_head(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _run(args: argparse.Namespace, settings: Settings, action: Action) -> int:
    from gateway.app import build_store  # the one place that picks the concrete store

    async def main() -> int:
        store = build_store(settings)
        await store.open()
        try:
            return await action(args, settings, store)
        except GatewayError as exc:
            print(f"acme-gateway: {exc.detail}", file=sys.stderr)
            return 1
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except BrokenPipeError:  # the reader (e.g. `| head`) stopped early: not an error
        sys.stderr.close()
        return 0


def login_name() -> str:
    """The operator's login name, recorded as the actor of what they do from the CLI."""
    try:
        return getpass.getuser()
    except OSError:  # no login name (e.g. a container without a passwd entry)
        return "unknown"


def _operator(args: argparse.Namespace) -> str:
    return f"cli:{args.approver or login_name()}"


def _services(settings: Settings, store: Store) -> tuple[EabService, ApprovalService]:
    clock = SystemClock()
    trail = AuditTrail(store, clock)
    return (EabService(settings, store, clock, trail),
            ApprovalService(settings, store, clock, trail))


async def eab_create(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``eab create``: the HMAC key is printed here once and never again."""
    eab, _ = _services(settings, store)
    key = await eab.create(tuple(args.profile), tuple(args.allowed_domains), args.reusable,
                           args.note, actor=f"cli:{login_name()}")
    print(f"kid:  {key.id}\nhmac: {key.hmac_key}")
    print(f"profiles: {', '.join(key.profiles) or 'all'}; domains: "
          f"{', '.join(key.allowed_domains) or 'any the profile allows'}; "
          f"{'reusable' if key.reusable else 'single use'}")
    print(f"certbot: --eab-kid {key.id} --eab-hmac-key <hmac>   "
          f"lego: --eab --kid {key.id} --hmac <hmac>", file=sys.stderr)
    return 0


async def eab_list(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``eab list``."""
    eab, _ = _services(settings, store)
    keys = await eab.list_keys()
    if not keys:
        print("no EAB keys; create one with `acme-gateway eab create --profile NAME`")
    for k in keys:
        created = k.created_at.strftime("%Y-%m-%d %H:%M") if k.created_at else "?"
        print(f"{k.id}  {k.status:<8} uses {k.uses:<3} {'reusable' if k.reusable else 'single':<8}"
              f" created {created}  profiles {','.join(k.profiles) or '*'}  domains "
              f"{','.join(k.allowed_domains) or '*'}  {k.note}")
    return 0


async def eab_revoke(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``eab revoke KID``."""
    eab, _ = _services(settings, store)
    key = await eab.revoke(args.kid, actor=f"cli:{login_name()}")
    print(f"{key.id}: revoked")
    return 0


async def approvals_list(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``approvals``: what waits for an approver."""
    _, approvals = _services(settings, store)
    pending = await approvals.pending()
    if not pending:
        print("no request is waiting for approval")
    for o in pending:
        print(f"{o.id}  {o.created_at:%Y-%m-%d %H:%M:%S}  profile {o.profile}  "
              f"{actor_of(o)}  {', '.join(i.value for i in o.identifiers)}")
    return 0


async def approve_request(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``approve ID``."""
    _, approvals = _services(settings, store)
    order = await approvals.approve(args.id, _operator(args))
    print(f"{order.id}: approved; the gateway sends it to its CA within "
          f"{settings.jobs.scan_period_seconds:g} s")
    return 0


async def reject_request(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``reject ID --reason TEXT``."""
    _, approvals = _services(settings, store)
    order = await approvals.reject(args.id, _operator(args), args.reason)
    print(f"{order.id}: rejected")
    return 0


def _tasks(store: Store) -> OperatorTasks:
    clock = SystemClock()
    return OperatorTasks(store, clock, AuditTrail(store, clock))


async def tasks_list(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``tasks list``."""
    lines = [f"{t.id}  {t.kind}  ca {t.ca}  serial {t.serial}  since {t.opened_at}\n"
             f"    {t.instructions}" for t in await _tasks(store).open_tasks()]
    print("\n".join(lines) or "no open operator tasks")
    return 0


async def task_done(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``tasks done ID``."""
    task = await _tasks(store).done(args.id, f"cli:{login_name()}", args.note)
    print(f"{task.id}: done" + (f"; certificate {task.serial} recorded as revoked"
                                if task.kind == "revoke" else ""))
    return 0


async def audit_verify(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``audit verify``: the hash chain, checked against the signed anchors by default."""
    log_path = args.anchors or settings.anchor_log_file()
    if args.anchors and not args.anchors.is_file():
        print(f"acme-gateway: no anchor log at {args.anchors}", file=sys.stderr)
        return 1
    result, anchors = await _check_trail(settings, store, log_path,
                                         [args.anchor] if args.anchor else [])
    _print_verdict(result, anchors)
    return 0 if result.ok else 1


async def _check_trail(settings: Settings, store: Store, log_path: Path, kept: list[Any],
                       ) -> tuple[audit_report.ChainCheck, audit_anchor.AnchorCheck]:
    """The chain from its newest archive cut on, against the anchors and pins ``kept``."""
    anchors = audit_anchor.check_files(settings.anchor_key_file(), log_path,
                                       settings.audit.anchor_key_fingerprint)
    start = audit_archive.chain_start(settings)
    result = await audit_report.verify(store, anchors.pins + kept, (start.seq, start.hash))
    result.problems = anchors.problems + list(start.problems) + result.problems
    result.unverified += anchors.unverified
    if not anchors.unverified:
        late = audit_anchor.unanchored(result, bool(anchors.pins), SystemClock().now(),
                                       settings.audit.anchor_interval_seconds, log_path)
        result.unverified += [late] if late else []
    return result, anchors


async def audit_archive_cmd(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``audit archive --before DATE --out FILE``: only an intact chain is archived."""
    if args.out.exists():
        print(f"acme-gateway: {args.out} exists; choose a new archive file", file=sys.stderr)
        return 1
    result, _ = await _check_trail(settings, store, settings.anchor_log_file(), [])
    if result.problems:
        for problem in result.problems:
            print(f"TAMPERED: {problem}")
        print("acme-gateway: the audit chain is broken, nothing was archived; "
              "see `acme-gateway audit verify`", file=sys.stderr)
        return 1
    done = await audit_archive.archive(settings, store, audit_archive.chain_start(settings),
                                       args.before, args.out, SystemClock().now())
    if done.cut is None:
        print(f"no audit row written before {args.before:%Y-%m-%dT%H:%M:%SZ} is left to "
              "archive (the newest row always stays)")
        return 0
    print(f"archived rows {done.first_seq} to {done.cut.seq} to {args.out}; the chain in the "
          f"database now starts after row {done.cut.seq} (signed cut in "
          f"{audit_archive.cut_log_file(settings)})")
    return 0


async def audit_check_archive(args: argparse.Namespace, settings: Settings,
                              store: Store) -> int:
    """``audit check-archive FILE``: its rows chain to a cut the anchor key signed."""
    try:
        key = audit_anchor.AnchorKey.load(settings.anchor_key_file())
        problems = audit_archive.check_archive(args.file, key)
    except (OSError, ValueError) as exc:
        print(f"acme-gateway: cannot check {args.file}: {exc}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"TAMPERED: {problem}")
    print(f"{args.file}: {'BROKEN' if problems else 'intact'}")
    return 1 if problems else 0


def _print_verdict(result: audit_report.ChainCheck, anchors: audit_anchor.AnchorCheck) -> None:
    """One line per finding, then what the anchors covered and the chain's state."""
    for problem in result.problems:
        print(f"TAMPERED: {problem}")
    for gap in result.unverified:
        print(f"UNVERIFIED: {gap}")
    print(_anchor_summary(anchors, result.last_seq))
    state = "intact" if result.ok else "BROKEN" if result.problems else "NOT VERIFIED"
    print(f"audit chain {state}: {result.rows} rows; head {result.head}")


def _anchor_summary(anchors: audit_anchor.AnchorCheck, last_seq: int) -> str:
    if not anchors.pins:
        return f"anchors: none checked ({anchors.lines} lines in the anchor log)"
    newest = max(pin.seq for pin in anchors.pins)
    after = f"; rows {newest + 1} to {last_seq} are newer than the newest anchor" \
        if last_seq > newest else ""
    return (f"anchors: {len(anchors.pins)} signed by {anchors.fingerprint} checked; the newest "
            f"covers rows 1 to {newest}{after}")


async def audit_anchor_key(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``audit anchor-key``: what an operator pins elsewhere to recognise the anchor key."""
    try:
        key = audit_anchor.AnchorKey.for_log(settings.anchor_key_file(),
                                             settings.anchor_log_file())
    except (OSError, ValueError) as exc:
        print(f"acme-gateway: cannot use the anchor key {settings.anchor_key_file()}: {exc}",
              file=sys.stderr)
        return 1
    print(f"fingerprint: {key.fingerprint}\nkey file:    {key.path}\n"
          f"anchor log:  {settings.anchor_log_file()}")
    print(key.public_pem(), end="")
    return 0


async def audit_report_cmd(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``audit report``."""
    rows = [r async for r in audit_report.rows_of(store, args.since, args.until)]
    report = audit_report.build_report(rows, args.since, args.until,
                                       settings.audit.max_validity_days)
    print(json.dumps(report, indent=2) if args.json else audit_report.render_text(report))
    return 0


# For the other operator modules (gateway.cli_inventory), which share this runner.
subcommand = _sub
