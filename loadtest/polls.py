"""``python -m loadtest polls``: what polling costs the server.

Unchanged resources (the default): one account places one order (its
authorization stays pending, nothing is answered), then POST-as-GETs the
same order, authorization and challenge ``-n`` times each, ``-c`` at a time.
Every poll is a full signed request (a fresh nonce, a JWS the server must
verify), as a client polling a slow validation sends. With ``--server-pid``
the server's CPU (its process tree, from /proc) is sampled around each
resource's polls and divided by their count; the load generator's own CPU is
reported the same way.

Validations in flight (``--in-flight SECONDS``): ``-n`` orders whose HTTP-01
responder answers SECONDS late, each answered and then its authorization
polled every ``--interval`` seconds, Retry-After ignored, until decided: how
many requests and how much server CPU one slow validation costs a client
that polls hard.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from loadtest.acme import Account, AcmeError, AcmeSession
from loadtest.cpu import tree_cpu_ms
from loadtest.jose import ACCOUNT_ALGS, AccountKey
from loadtest.responders import Http01Responder
from loadtest.stats import Recorder, summarize

RESOURCES = ("order", "authz", "challenge")
DECIDED = ("valid", "invalid")
DEFAULT_POLLS = 2000


def add_options(polls: argparse.ArgumentParser) -> None:
    """The ``polls`` subcommand's options."""
    polls.add_argument("--directory", required=True, help="ACME directory URL")
    polls.add_argument("-n", "--count", type=int, default=DEFAULT_POLLS,
                       help=f"polls of each resource (default {DEFAULT_POLLS})")
    polls.add_argument("-c", "--concurrency", type=int, default=16, help="polls in flight")
    polls.add_argument("--resource", choices=RESOURCES, action="append",
                       help="poll only this resource (repeatable; default: all three)")
    polls.add_argument("--in-flight", type=float, default=0.0, metavar="SECONDS",
                       help="poll authorizations whose HTTP-01 answer comes SECONDS late")
    polls.add_argument("--interval", type=float, default=0.05,
                       help="--in-flight: seconds between polls (Retry-After ignored)")
    polls.add_argument("--http01-port", type=int, default=5002,
                       help="--in-flight: HTTP-01 responder port")
    polls.add_argument("--dns-port", type=int, default=0,
                       help="--in-flight: DNS responder port (0: none)")
    polls.set_defaults(challenge="http-01", dns_thread=True)
    polls.add_argument("--name", default="", help="the order's DNS name (default: a random one)")
    polls.add_argument("--account-alg", choices=ACCOUNT_ALGS, default="ES256")
    trust = polls.add_mutually_exclusive_group()
    trust.add_argument("--cafile", type=Path, help="CA bundle that signs the server's TLS cert")
    trust.add_argument("--insecure", action="store_true",
                       help="do not verify the server's TLS certificate")
    polls.add_argument("--server-pid", type=int,
                       help="report this process tree's CPU per poll")
    polls.add_argument("--timeout", type=float, default=60.0, help="cut one poll off after S s")
    polls.add_argument("--json", type=Path, metavar="FILE", help="write the result as JSON")
    polls.add_argument("--quiet", action="store_true", help="no summary on stdout")


@dataclass
class PollRun:
    """What polling one resource measured."""

    resource: str
    url: str
    polls: int = 0
    wall_s: float = 0.0
    client_cpu_ms: float = 0.0
    server_cpu_ms: float | None = None
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The run as plain JSON; CPU per poll in microseconds."""
        done = max(self.polls, 1)
        server = None if self.server_cpu_ms is None else round(self.server_cpu_ms * 1000 / done, 1)
        return {
            "resource": self.resource,
            "url": self.url,
            "polls": self.polls,
            "wall_s": round(self.wall_s, 3),
            "polls_per_s": round(self.polls / self.wall_s, 1) if self.wall_s else 0.0,
            "server_cpu_ms": self.server_cpu_ms,
            "server_cpu_us_per_poll": server,
            "client_cpu_us_per_poll": round(self.client_cpu_ms * 1000 / done, 1),
            "statuses": dict(self.statuses),
            "errors": dict(self.errors),
            "latency_ms": summarize(self.latencies_ms),
        }


@dataclass(frozen=True)
class Target:
    """The account and the three URLs it polls."""

    account: Account
    urls: dict[str, str]


async def prepare(session: AcmeSession, name: str, alg: str = "ES256") -> Target:
    """A fresh account with one pending order: the order, authorization and challenge URLs."""
    await session.load_directory()
    account = await session.new_account(AccountKey.generate(alg))
    reply = await session.post(session.directory["newOrder"], account.key,
                               {"identifiers": [{"type": "dns", "value": name}]}, account.url)
    order = reply.json()
    authz_url = order["authorizations"][0]
    authz = (await session.post(authz_url, account.key, None, account.url)).json()
    challenge = authz["challenges"][0]["url"]
    return Target(account, {"order": reply.location, "authz": authz_url, "challenge": challenge})


async def poll_many(session: AcmeSession, account: Account, run: PollRun, count: int,
                    concurrency: int) -> None:
    """POST-as-GET ``run.url`` ``count`` times, ``concurrency`` at once, recording each answer."""
    left = count

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            began = time.perf_counter()
            try:
                reply = await session.post(run.url, account.key, None, account.url)
                run.statuses[str(reply.json().get("status"))] += 1
            except AcmeError as exc:
                run.errors[exc.kind] += 1
                continue
            except (aiohttp.ClientError, TimeoutError) as exc:
                run.errors[type(exc).__name__] += 1
                continue
            run.latencies_ms.append((time.perf_counter() - began) * 1000)
            run.polls += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def measure(session: AcmeSession, target: Target, resource: str, count: int,
                  concurrency: int, server_pid: int | None) -> PollRun:
    """Poll one resource, with the server's and this process's CPU sampled around it."""
    run = PollRun(resource, target.urls[resource])
    # A few polls first: connections open and nonces pooled before the window starts.
    await poll_many(session, target.account, PollRun(resource, run.url), concurrency, concurrency)
    server_before = tree_cpu_ms(server_pid) if server_pid else 0.0
    client_before, wall_before = time.process_time(), time.perf_counter()
    await poll_many(session, target.account, run, count, concurrency)
    run.wall_s = time.perf_counter() - wall_before
    run.client_cpu_ms = (time.process_time() - client_before) * 1000
    if server_pid:
        run.server_cpu_ms = round(tree_cpu_ms(server_pid) - server_before, 1)
    return run


async def run_polls(args: argparse.Namespace, http: aiohttp.ClientSession) -> dict[str, Any]:
    """The ``polls`` subcommand over ``http``: one result per polled resource."""
    name = args.name or f"poll-{secrets.token_hex(4)}.loadtest.test"
    session = AcmeSession(http, args.directory, Recorder())
    target = await prepare(session, name, args.account_alg)
    runs = [await measure(session, target, resource, args.count, args.concurrency,
                          args.server_pid)
            for resource in (args.resource or RESOURCES)]
    return {"mode": "polls", "target": args.directory, "count": args.count,
            "concurrency": args.concurrency, "runs": [r.to_json() for r in runs]}


def format_result(result: dict[str, Any]) -> str:
    """One line per resource: polls/s, CPU per poll, latency."""
    lines = [f"polls of an unchanged resource at {result['target']} (-c {result['concurrency']})"]
    for run in result["runs"]:
        server = run["server_cpu_us_per_poll"]
        lines.append(
            f"  {run['resource']:9} {run['polls']:6d} polls  {run['polls_per_s']:8.1f}/s  "
            f"server {'-' if server is None else f'{server:.0f}'} µs/poll  "
            f"client {run['client_cpu_us_per_poll']:.0f} µs/poll  "
            f"p50 {run['latency_ms']['p50']:.1f} ms  p99 {run['latency_ms']['p99']:.1f} ms  "
            f"statuses {run['statuses']}" + (f"  errors {run['errors']}" if run["errors"] else ""))
    return "\n".join(lines)


async def validate_slowly(session: AcmeSession, account: Account, http01: Http01Responder,
                          name: str, interval: float) -> tuple[int, str]:
    """Order ``name``, answer its HTTP-01 challenge, poll until decided: (polls, status)."""
    reply = await session.post(session.directory["newOrder"], account.key,
                               {"identifiers": [{"type": "dns", "value": name}]}, account.url)
    authz_url = reply.json()["authorizations"][0]
    authz = (await session.post(authz_url, account.key, None, account.url)).json()
    challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
    http01.tokens[challenge["token"]] = account.key.key_authorization(challenge["token"])
    await session.post(challenge["url"], account.key, {}, account.url)
    polls = 0
    while True:
        polls += 1
        status = str((await session.post(authz_url, account.key, None, account.url))
                     .json().get("status"))
        if status != "pending":
            return polls, status
        await asyncio.sleep(interval)


async def run_in_flight(args: argparse.Namespace, http: aiohttp.ClientSession,
                        http01: Http01Responder) -> dict[str, Any]:
    """``polls --in-flight``: ``-n`` slow validations, ``-c`` at a time, polled hard."""
    session = AcmeSession(http, args.directory, Recorder())
    await session.load_directory()
    account = await session.new_account(AccountKey.generate(args.account_alg))
    label = secrets.token_hex(3)
    semaphore = asyncio.Semaphore(args.concurrency)
    outcomes: list[tuple[int, str]] = []

    async def one(index: int) -> None:
        async with semaphore:
            outcomes.append(await validate_slowly(
                session, account, http01, f"f{index}-{label}.loadtest.test", args.interval))

    server_before = tree_cpu_ms(args.server_pid) if args.server_pid else 0.0
    client_before, wall_before = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(args.count)))
    wall = time.perf_counter() - wall_before
    server = round(tree_cpu_ms(args.server_pid) - server_before, 1) if args.server_pid else None
    polls = sum(p for p, _ in outcomes)
    return {
        "mode": "polls-in-flight", "target": args.directory, "count": args.count,
        "concurrency": args.concurrency, "responder_delay_s": args.in_flight,
        "interval_s": args.interval, "wall_s": round(wall, 3), "polls": polls,
        "polls_per_validation": round(polls / len(outcomes), 2),
        "statuses": dict(Counter(s for _, s in outcomes)),
        "server_cpu_ms": server,
        "server_cpu_ms_per_validation": None if server is None else round(server / args.count, 3),
        "client_cpu_ms": round((time.process_time() - client_before) * 1000),
    }


def format_in_flight(result: dict[str, Any]) -> str:
    """One line: polls and server CPU per slow validation."""
    cpu = result["server_cpu_ms_per_validation"]
    return (f"{result['count']} validations answered {result['responder_delay_s']} s late, "
            f"polled every {result['interval_s']} s at {result['target']}: "
            f"{result['polls_per_validation']} polls each, "
            f"server {'-' if cpu is None else f'{cpu:.2f}'} ms each, wall {result['wall_s']} s, "
            f"statuses {result['statuses']}")
