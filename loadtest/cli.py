"""``python -m loadtest``: ACME and EST load against any URL, plus helpers.

Subcommands: ``acme`` (full RFC 8555 order flow), ``est`` (simpleenroll),
``polls`` (server CPU per poll of unchanged resources),
``cpu`` (CPU time of a server process tree), ``pebble-setup`` (config and TLS
certificate for a local Pebble). Exit status: 0 when every unit succeeded,
1 when some failed, 2 when the run could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509

from loadtest import ari, polls
from loadtest.acme import Account, AcmeError, AcmeSession
from loadtest.cpu import CpuMeter, tree_cpu_ms
from loadtest.csr import KEY_TYPES
from loadtest.dns_thread import ThreadedDnsResponder
from loadtest.est import EstFlow, EstOptions, enroll_url
from loadtest.flow import CHALLENGES, FlowOptions, OrderFlow
from loadtest.jose import ACCOUNT_ALGS, AccountKey
from loadtest.output import format_summary, show_progress, write_json
from loadtest.pebble import write_pebble_setup
from loadtest.prepare import planned_orders
from loadtest.report import write_report
from loadtest.responders import DnsResponder, Http01Responder
from loadtest.runner import Plan, drive
from loadtest.stats import Recorder

DESCRIPTION = "ACME and EST load against any server on loopback, plus measuring helpers."
DEFAULT_DNS_PORT = 8053
# Bumped when a field of the JSON result changes meaning or disappears.
RESULT_SCHEMA = 2
DEFAULT_COUNT = 10
RATE_MODE_CONCURRENCY = 256
UNLIMITED = 2**62


class SetupError(Exception):
    """The run cannot start (unreachable server, port taken, bad option)."""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-n", "--count", type=int, help="units to run (default 10; unlimited with --duration)"
    )
    p.add_argument(
        "-c", "--concurrency", type=int, help="units in flight (default 1; 256 with --rate)"
    )
    p.add_argument(
        "--rate", type=float, default=0.0, help="fixed rate (units/s) instead of closed loop"
    )
    p.add_argument("--duration", type=float, default=0.0, help="start no unit after S seconds")
    p.add_argument("--timeout", type=float, default=120.0, help="cut one unit off after S seconds")
    trust = p.add_mutually_exclusive_group()
    trust.add_argument("--cafile", type=Path, help="CA bundle that signs the server's TLS cert")
    trust.add_argument(
        "--insecure", action="store_true", help="do not verify the server's TLS certificate"
    )
    p.add_argument(
        "--key-type", choices=KEY_TYPES, default="ec", help="certificate key (fresh per unit)"
    )
    p.add_argument(
        "--server-pid", type=int, help="report this process tree's CPU ms per certificate"
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="write the result as JSON to FILE")
    p.add_argument(
        "--report", type=Path, metavar="FILE", help="write an HTML report with SVG charts to FILE"
    )
    p.add_argument("--quiet", action="store_true", help="no summary on stdout")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="mode", required=True)
    _acme_options(sub.add_parser("acme", help="full ACME order flow"))
    _est_options(sub.add_parser("est", help="EST simpleenroll"))
    polls.add_options(sub.add_parser("polls", help="server CPU per poll of unchanged resources"))
    cpu = sub.add_parser("cpu", help="print the CPU ms used so far by a process and its children")
    cpu.add_argument("--pid", type=int, required=True)
    info = sub.add_parser(
        "renewal-info", help="ask renewalInfo (RFC 9773) when to renew PEM certificates"
    )
    info.add_argument("--directory", required=True, help="ACME directory URL")
    info.add_argument("--cafile", type=Path, help="CA bundle that signs the server's TLS cert")
    info.add_argument("certs", type=Path, nargs="+", help="PEM files, leaf first")
    setup = sub.add_parser("pebble-setup", help="write a Pebble config and TLS cert into DIR")
    setup.add_argument("dir", type=Path)
    setup.add_argument("--port", type=int, default=14000)
    setup.add_argument("--http01-port", type=int, default=5002)
    return parser


def _acme_options(acme: argparse.ArgumentParser) -> None:
    acme.add_argument("--directory", required=True, help="ACME directory URL")
    acme.add_argument("--challenge", choices=CHALLENGES, default="http-01")
    acme.add_argument("--names", type=int, default=1, help="DNS names per order")
    acme.add_argument("--domain", default="loadtest.test", help="names are made under this domain")
    acme.add_argument("--profile", default="", help="ACME profile to request in newOrder")
    acme.add_argument(
        "--accounts", type=int, default=0, help="account pool size (default: min(c, 16))"
    )
    acme.add_argument("--account-alg", choices=ACCOUNT_ALGS, default="ES256")
    acme.add_argument("--eab-kid", default="", help="external account binding key id")
    acme.add_argument(
        "--eab-hmac",
        default=os.environ.get("LOADTEST_EAB_HMAC", ""),
        help="EAB HMAC key, base64url (default: $LOADTEST_EAB_HMAC, kept off the command line)",
    )
    acme.add_argument(
        "--http01-port", type=int, default=5002, help="HTTP-01 responder port (0: none)"
    )
    acme.add_argument(
        "--http01-delay", type=float, default=0.0, help="HTTP-01 responder answers after S s"
    )
    acme.add_argument(
        "--dns-port", type=int, help=f"DNS responder port (dns-01: {DEFAULT_DNS_PORT})"
    )
    acme.add_argument(
        "--dns-thread",
        action="store_true",
        help="answer DNS on a thread of its own (timely while hard polling keeps the loop busy)",
    )
    acme.add_argument(
        "--poll-interval", type=float, default=0.2, help="poll delay without Retry-After"
    )
    acme.add_argument(
        "--ignore-retry-after",
        action="store_true",
        help="poll every --poll-interval whatever Retry-After says (a badly behaved client)",
    )
    acme.add_argument(
        "--ari",
        action="store_true",
        help="after each certificate, read its renewalInfo (RFC 9773) and count the windows",
    )
    _common(acme)


def _est_options(est: argparse.ArgumentParser) -> None:
    est.add_argument("--url", required=True, help="server URL (https://host:port)")
    est.add_argument("--label", default="", help="EST label (/.well-known/est/<label>/)")
    est.add_argument("--client-cert", type=Path, help="TLS client certificate (PEM)")
    est.add_argument("--client-key", type=Path, help="TLS client key (PEM)")
    est.add_argument(
        "--user",
        default=os.environ.get("LOADTEST_EST_USER", ""),
        help="HTTP Basic credentials USER:PASSWORD (default: $LOADTEST_EST_USER)",
    )
    est.add_argument(
        "--new-connection-per-request",
        action="store_true",
        help="new TCP/TLS connection for every request, as most routers do",
    )
    _common(est)


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | bool:
    """The client TLS settings: a CA file, no verification, or the system default."""
    if args.insecure:
        return False
    context = ssl.create_default_context(cafile=str(args.cafile) if args.cafile else None)
    if getattr(args, "client_cert", None):
        context.load_cert_chain(args.client_cert, args.client_key)
    return context


@contextlib.asynccontextmanager
async def http_session(
    args: argparse.Namespace,
    force_close: bool = False,
    headers: dict[str, str] | None = None,
    units_bounded: bool = False,
) -> AsyncIterator[aiohttp.ClientSession]:
    """One keep-alive session for the whole run (or one connection per request).

    ``units_bounded``: every request runs inside a unit cut off at --timeout
    (runner.run_unit) or a set-up step with a bound of its own, so no timer
    is armed per request. No cookies either: ACME and EST use none.
    """
    connector = aiohttp.TCPConnector(ssl=tls_context(args), limit=0, force_close=force_close)
    limit = min(args.timeout, 60.0)
    timeout = aiohttp.ClientTimeout(total=None if units_bounded else limit, connect=limit)
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        headers=headers,
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as session:
        yield session


def client_cpu(cpu_ms: float, units: int, unit: str) -> dict[str, Any]:
    """The load generator's own CPU in the measured window, in total and per successful unit."""
    return {
        "cpu_ms": round(cpu_ms, 1),
        "unit": unit,
        "units": units,
        "cpu_ms_per_unit": round(cpu_ms / units, 3) if units else None,
    }


async def _measure(
    args: argparse.Namespace, recorder: Recorder, work: Callable[[int], Awaitable[object]]
) -> tuple[dict[str, Any] | None, float]:
    """Drive the plan with a progress line; returns (server CPU, client CPU ms) of the window.

    The client's CPU is ``time.process_time()``: every thread of this process,
    the challenge responders included (they answer on this event loop).
    """
    meter = CpuMeter(args.server_pid) if args.server_pid else None
    if meter:
        meter.start()
    target = args.count if args.count < UNLIMITED else 0
    progress = asyncio.create_task(show_progress(recorder, target))
    plan = Plan(args.count, args.concurrency, args.rate, args.duration, args.timeout)
    client_begin = time.process_time()
    try:
        await drive(work, plan, recorder)
    finally:
        progress.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await progress
    client_ms = (time.process_time() - client_begin) * 1000.0
    if meter:
        meter.stop()
        return meter.result(recorder.ok), client_ms
    return None, client_ms


@contextlib.asynccontextmanager
async def challenge_responders(
    args: argparse.Namespace,
) -> AsyncIterator[tuple[Http01Responder | None, DnsResponder | None]]:
    """The HTTP-01 and DNS responders the options ask for, listening for the whole run."""
    http01 = None
    if args.challenge == "http-01" and args.http01_port:
        http01 = Http01Responder(args.http01_port, args.http01_delay)
    dns_port = args.dns_port
    if dns_port is None:
        dns_port = DEFAULT_DNS_PORT if args.challenge == "dns-01" else 0
    kind = ThreadedDnsResponder if args.dns_thread else DnsResponder
    dns = kind(dns_port) if dns_port else None
    async with contextlib.AsyncExitStack() as stack:
        for responder, what in ((http01, "HTTP-01 responder"), (dns, "DNS responder")):
            if responder:
                await _listen(responder, what)
                stack.push_async_callback(responder.stop)
        yield http01, dns


async def _listen(responder: Http01Responder | DnsResponder, what: str) -> None:
    try:
        await responder.start()
    except OSError as exc:
        raise SetupError(
            f"{what} cannot listen on 127.0.0.1:{responder.port}: {exc.strerror}"
            " (choose another port with --http01-port / --dns-port)"
        ) from exc


async def _load_directory(session: AcmeSession, limit_seconds: float) -> None:
    try:
        async with asyncio.timeout(limit_seconds):
            await session.load_directory()
    except (AcmeError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise SetupError(f"cannot read the ACME directory {session.directory_url}: {exc}") from exc


async def _accounts(session: AcmeSession, args: argparse.Namespace) -> list[Account]:
    count = args.accounts or min(max(1, args.concurrency), 16)

    async def one() -> Account:
        key = AccountKey.generate(args.account_alg)
        with session.recorder.timed("newAccount"):
            return await session.new_account(key, args.eab_kid, args.eab_hmac)

    try:
        async with asyncio.timeout(args.timeout):
            return list(await asyncio.gather(*(one() for _ in range(count))))
    except (AcmeError, aiohttp.ClientError, TimeoutError) as exc:
        raise SetupError(f"cannot create accounts at {args.directory}: {exc}") from exc


async def _open_connections(session: AcmeSession, args: argparse.Namespace) -> int:
    """One keep-alive connection per order in flight, opened (TLS included) before the window."""
    count: int = min(max(1, args.concurrency), RATE_MODE_CONCURRENCY)
    try:
        async with asyncio.timeout(args.timeout):
            await session.open_connections(count)
    except (AcmeError, aiohttp.ClientError, TimeoutError) as exc:
        raise SetupError(f"cannot fetch nonces from {args.directory}: {exc}") from exc
    return count


def _flow_options(args: argparse.Namespace) -> FlowOptions:
    return FlowOptions(
        args.challenge,
        args.names,
        args.domain,
        args.profile,
        args.key_type,
        args.poll_interval,
        ignore_retry_after=args.ignore_retry_after,
        ari=args.ari,
    )


async def _prepare_acme(
    session: AcmeSession, flow: OrderFlow, args: argparse.Namespace
) -> tuple[list[Account], dict[str, Any]]:
    """Everything that does not wait for the server's answers to orders, before the window.

    Accounts, then every order's key and CSR, then the keep-alive connections
    (last, so that they are fresh when the window opens). Timed on their own
    recorder: none of it is in the window's latencies, counters or CPU.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    accounts = await _accounts(session, args)
    csr_begin = time.process_time()
    flow.prepare(planned_orders(args.count, args.rate, args.duration, UNLIMITED))
    csr_ms = (time.process_time() - csr_begin) * 1000.0
    connections = await _open_connections(session, args)
    summary = session.recorder.summary()
    prepared = {
        "seconds": round(time.perf_counter() - wall, 3),
        "client_cpu_ms": round((time.process_time() - cpu) * 1000.0, 1),
        "accounts": len(accounts),
        "csrs": flow.csrs.prepared,
        "csr_cpu_ms": round(csr_ms, 1),
        "connections": connections,
        "latency_ms": summary["latency_ms"],
        "counters": summary["counters"],
    }
    return accounts, prepared


async def run_acme(args: argparse.Namespace) -> dict[str, Any]:
    """The ``acme`` subcommand: responders, accounts, CSRs, connections, then the window."""
    recorder = Recorder()
    responders = challenge_responders(args)
    async with responders as (http01, dns), http_session(args, units_bounded=True) as http:
        session = AcmeSession(http, args.directory, Recorder())
        await _load_directory(session, args.timeout)
        flow = OrderFlow(session, _flow_options(args), http01, dns)
        accounts, prepared = await _prepare_acme(session, flow, args)
        flow.record_into(recorder)

        async def order(index: int) -> int:
            return await flow.run(accounts[index % len(accounts)], index)

        cpu, client_ms = await _measure(args, recorder, order)
    config = {
        "challenge": args.challenge,
        "names_per_order": args.names,
        "accounts": len(accounts),
        "account_alg": args.account_alg,
        "profile": args.profile,
        "ari": args.ari,
    }
    result = _result("acme", args.directory, args, recorder, cpu, config)
    result["client_cpu"] = client_cpu(client_ms, recorder.ok, "order")
    result["prepare"] = prepared
    return result


def basic_auth(user_password: str) -> str:
    """The HTTP Basic Authorization value for ``USER:PASSWORD``."""
    return "Basic " + base64.b64encode(user_password.encode()).decode("ascii")


async def run_est(args: argparse.Namespace) -> dict[str, Any]:
    """The ``est`` subcommand: simpleenroll ``-n`` times."""
    recorder = Recorder()
    url = enroll_url(args.url, args.label)
    # Sent pre-emptively: a router configured with a password does not wait for the 401.
    headers = {"Authorization": basic_auth(args.user)} if args.user else None
    async with http_session(
        args, args.new_connection_per_request, headers, units_bounded=True
    ) as http:
        flow = EstFlow(
            http, EstOptions(url, args.key_type, max_wait_seconds=args.timeout), recorder
        )
        wall, begin = time.perf_counter(), time.process_time()
        flow.prepare(planned_orders(args.count, args.rate, args.duration, UNLIMITED))
        csr_ms = (time.process_time() - begin) * 1000.0
        prepare_seconds = time.perf_counter() - wall
        cpu, client_ms = await _measure(args, recorder, flow.run)
    config = {"label": args.label, "new_connection_per_request": args.new_connection_per_request}
    result = _result("est", url, args, recorder, cpu, config)
    result["client_cpu"] = client_cpu(client_ms, recorder.ok, "enrollment")
    result["prepare"] = {
        "seconds": round(prepare_seconds, 3),
        "client_cpu_ms": round(csr_ms, 1),
        "csrs": flow.csrs.prepared,
        "csr_cpu_ms": round(csr_ms, 1),
    }
    return result


def _result(
    mode: str,
    target: str,
    args: argparse.Namespace,
    recorder: Recorder,
    cpu: dict[str, Any] | None,
    config: dict[str, Any],
) -> dict[str, Any]:
    plan = {
        "count": args.count if args.count < UNLIMITED else None,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "duration": args.duration,
        "key_type": args.key_type,
    }
    return {
        "schema": RESULT_SCHEMA,
        "mode": mode,
        "target": target,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]},
        "plan": plan | config,
        **recorder.summary(),
        "certificates_issued": recorder.ok,
        "server_cpu": cpu,
    }


def resolve_plan(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fill the defaults that depend on other options and refuse unbounded or empty runs."""
    if args.count is None:
        args.count = UNLIMITED if args.duration else DEFAULT_COUNT
    if args.concurrency is None:
        args.concurrency = RATE_MODE_CONCURRENCY if args.rate else 1
    for name in ("count", "concurrency", "timeout"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive")
    if args.rate < 0 or args.duration < 0:
        parser.error("--rate and --duration cannot be negative")
    if bool(getattr(args, "client_cert", None)) != bool(getattr(args, "client_key", None)):
        parser.error("--client-cert and --client-key go together")


async def execute(argv: list[str]) -> tuple[int, dict[str, Any] | None]:
    """Parse ``argv``, run the subcommand, write outputs; returns (exit status, result)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.mode == "cpu":
        print(f"{tree_cpu_ms(args.pid):.0f}")
        return 0, None
    if args.mode == "renewal-info":
        return await renewal_info(args)
    if args.mode == "polls":
        return await run_polls(args)
    if args.mode == "pebble-setup":
        setup = write_pebble_setup(args.dir, port=args.port, http01_port=args.http01_port)
        print(
            " ".join(setup.command()), f"\n# directory: {setup.directory_url}  cafile: {setup.cert}"
        )
        return 0, None
    resolve_plan(parser, args)
    try:
        result = await (run_acme(args) if args.mode == "acme" else run_est(args))
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2, None
    if not args.quiet:
        print(format_summary(result))
    if args.json:
        write_json(result, args.json)
    if args.report:
        write_report(result, args.report)
    return (0 if result["failed"] == 0 else 1), result


async def renewal_info(args: argparse.Namespace) -> tuple[int, dict[str, Any] | None]:
    """The ``renewal-info`` subcommand: one JSON line per certificate (status 1 on an error)."""
    context = ssl.create_default_context(cafile=str(args.cafile) if args.cafile else None)
    answers = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
        for path in args.certs:
            try:
                leaf = x509.load_pem_x509_certificates(path.read_bytes())[0]
                answer = await ari.ask(http, args.directory, leaf)
            except (OSError, ValueError, aiohttp.ClientError) as exc:
                print(f"error: {path}: {exc}", file=sys.stderr)
                return 1, None
            print(json.dumps({"file": str(path), **answer}))
            answers.append(answer)
    return 0, {"renewal_info": answers}


async def run_polls(args: argparse.Namespace) -> tuple[int, dict[str, Any] | None]:
    """The ``polls`` subcommand: CPU per poll of an unchanged order, authorization, challenge."""
    if args.count <= 0 or args.concurrency <= 0:
        print("error: --count and --concurrency must be positive", file=sys.stderr)
        return 2, None
    try:
        if args.in_flight:
            args.http01_delay = args.in_flight
            async with challenge_responders(args) as (http01, _), http_session(args) as http:
                assert http01 is not None
                result = await polls.run_in_flight(args, http, http01)
        else:
            async with http_session(args) as http:
                result = await polls.run_polls(args, http)
    except (AcmeError, aiohttp.ClientError, TimeoutError, KeyError, ValueError,
            SetupError) as exc:
        print(f"error: cannot poll at {args.directory}: {exc!r}", file=sys.stderr)
        return 2, None
    if not args.quiet:
        print((polls.format_in_flight if args.in_flight else polls.format_result)(result))
    if args.json:
        write_json(result, args.json)
    if args.in_flight:
        return (0 if set(result["statuses"]) == {"valid"} else 1), result
    failed = any(run["errors"] for run in result["runs"])
    return (1 if failed else 0), result


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run on uvloop."""
    import uvloop

    try:
        status, _ = uvloop.run(execute(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); say nothing more on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return status
