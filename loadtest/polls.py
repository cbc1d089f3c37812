"""``python -m loadtest polls``: the server's CPU cost of one poll of an unchanged resource.

One account places one order (its authorization stays pending, nothing is
answered), then POST-as-GETs the same order, authorization and challenge
``-n`` times each, ``-c`` at a time. Every poll is a full signed request (a
fresh nonce, a JWS the server must verify), as a client polling a slow
validation sends. With ``--server-pid`` the server's CPU (its process tree,
from /proc) is sampled around each resource's polls and divided by their
count; the load generator's own CPU is reported the same way.
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
from loadtest.stats import Recorder, summarize

RESOURCES = ("order", "authz", "challenge")
DEFAULT_POLLS = 2000


def add_options(polls: argparse.ArgumentParser) -> None:
    """The ``polls`` subcommand's options."""
    polls.add_argument("--directory", required=True, help="ACME directory URL")
    polls.add_argument("-n", "--count", type=int, default=DEFAULT_POLLS,
                       help=f"polls of each resource (default {DEFAULT_POLLS})")
    polls.add_argument("-c", "--concurrency", type=int, default=16, help="polls in flight")
    polls.add_argument("--resource", choices=RESOURCES, action="append",
                       help="poll only this resource (repeatable; default: all three)")
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
