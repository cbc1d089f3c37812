"""Generate cases from a seed, send them to a served gateway, and judge every answer.

Verdicts: no status of 500 or more, an answer within ``TIMEOUT`` seconds, every
ACME error an RFC 7807 problem document with an ACME error type, every EST
error a non-empty text/plain line; afterwards the gateway still serves a
normal request. Cases run in a few lanes, each with its own nonce chain (every
ACME answer carries the next nonce), so most signed cases get past the nonce
check to the rule they are about.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

from tests.badinput import acme_cases, admin_cases, est_cases, raw_cases, scep_cases
from tests.badinput.case import MAIN, PARSER, Case
from tests.badinput.server import Target

TIMEOUT = 10.0
ACME_ERROR = "urn:ietf:params:acme:error:"
_ID = re.compile(r"[a-z0-9]{26}")  # the gateway's resource ids
BUILDERS = (acme_cases.BUILDERS + est_cases.BUILDERS + raw_cases.BUILDERS
            + scep_cases.BUILDERS + admin_cases.BUILDERS)
# fullcmc is answered 501 on purpose (RFC 7030 §4.3 makes it optional).
DELIBERATE_5XX = ("/fullcmc",)


def case_at(seed: int, index: int, target: Target) -> Case:
    """Case ``index`` of a seed: always the same request (its own random stream)."""
    rng = random.Random(f"{seed}:{index}")
    builder = rng.choices(_BUILDER_FUNCS, _WEIGHTS)[0]
    return builder(rng, target)


_BUILDER_FUNCS = [b for b, _ in BUILDERS]
_WEIGHTS = [w for _, w in BUILDERS]


@dataclass
class Report:
    """What a run found: cases per family, and each failure with its reason."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def failed(self, group: str | None = None) -> list[tuple[str, str, str]]:
        """Failures, optionally of one group only."""
        return [f for f in self.failures if group is None or f[0] == group]

    def summary(self) -> str:
        """Counts, status classes and the first failures, for a person."""
        lines = [f"{sum(self.cases.values())} cases in {self.seconds:.1f} s, "
                 f"{len(self.failures)} failed",
                 "statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))]
        lines += [f"  {fam}: {n}" for fam, n in sorted(self.cases.items())]
        # Failures alike but for resource ids are counted once.
        alike = Counter(f"FAIL [{g}] {_ID.sub('ID', what)}: {why}"
                        for g, what, why in self.failures)
        lines += [f"{n:6d} x {line}" for line, n in alike.most_common(40)]
        return "\n".join(lines)


def verdict(case: Case, status: int, ctype: str, body: bytes) -> str | None:
    """Why an answer is wrong for its case, or None."""
    if status >= 500 and not case.url.endswith(DELIBERATE_5XX):
        return f"status {status}"
    if case.status is not None and status != case.status:
        return f"status {status}, not {case.status}"
    if status < 400 or case.group == PARSER:
        return None
    head = case.method == "HEAD"  # an answer to HEAD has headers only
    if case.is_acme:
        return _problem_fault(ctype, body, head)
    if case.family.startswith("admin."):
        fault = _admin_fault(case, ctype, body)
        return f"{status}: {fault}" if fault else None
    if not ctype.startswith("text/plain"):
        return f"EST error {status} with Content-Type {ctype!r}"
    return None if head or body.strip() else f"EST error {status} with an empty body"


def _admin_fault(case: Case, ctype: str, body: bytes) -> str | None:
    """The API refuses with {"error": "..."}, the console with an HTML page."""
    if case.family == "admin.console":
        return None if ctype.startswith("text/html") and body else f"console error as {ctype!r}"
    try:
        doc = json.loads(body)
    except ValueError:
        return f"admin API error that is not JSON ({ctype!r})"
    return None if isinstance(doc, dict) and doc.get("error") else "admin API error without text"


def _problem_fault(ctype: str, body: bytes, head: bool) -> str | None:
    if not ctype.startswith("application/problem+json"):
        return f"Content-Type {ctype!r}, not application/problem+json"
    if head:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return "a problem document that is not JSON"
    if not isinstance(doc, dict) or not str(doc.get("type", "")).startswith(ACME_ERROR):
        return f"problem type {doc.get('type') if isinstance(doc, dict) else doc!r}"
    return None if doc.get("detail") else "a problem document without detail"


class Lane:
    """Sends cases one after another over one connection pool with one nonce chain."""

    def __init__(self, session: aiohttp.ClientSession, target: Target, report: Report) -> None:
        self.session = session
        self.target = target
        self.report = report
        self.nonce = ""

    async def fresh_nonce(self) -> str:
        """A nonce from newNonce."""
        async with self.session.head(self.target.directory["newNonce"]) as resp:
            return resp.headers["Replay-Nonce"]

    async def run(self, cases: Iterator[Case]) -> None:
        """Send every case and record its verdict."""
        self.nonce = await self.fresh_nonce()
        for case in cases:
            self.report.cases[case.family] += 1
            try:
                status, ctype, body = await asyncio.wait_for(self.send(case), TIMEOUT)
            except TimeoutError:
                self._fail(case, f"no answer within {TIMEOUT} s")
                continue
            except (aiohttp.ClientError, OSError) as exc:
                if case.group != PARSER:
                    self._fail(case, f"connection failed: {exc!r}")
                continue
            self.report.statuses[status] += 1
            fault = verdict(case, status, ctype, body)
            if fault:
                self._fail(case, fault)

    def _fail(self, case: Case, why: str) -> None:
        path = urlsplit(case.url).path
        self.report.failures.append((case.group, f"{case.family} {case.method} {path[:80]}", why))

    async def send(self, case: Case) -> tuple[int, str, bytes]:
        """One request; the answer's status, Content-Type and body."""
        if case.raw is not None:
            return await send_raw(self.target.plain_base, case.raw)
        body = case.body(self.nonce) if callable(case.body) else case.body
        async with self.session.request(case.method, case.url, data=body,
                                        headers=dict(case.headers),
                                        skip_auto_headers=("Content-Type",)) as resp:
            data = await resp.read()
            if "Replay-Nonce" in resp.headers:
                self.nonce = resp.headers["Replay-Nonce"]
            elif case.is_acme:
                self.nonce = await self.fresh_nonce()
            return resp.status, resp.headers.get("Content-Type", ""), data


async def send_raw(base: str, raw: bytes) -> tuple[int, str, bytes]:
    """Write ``raw`` to a new plain connection, half-close it, read the answer to EOF.

    The half-close tells the server that no more bytes come: a request cut short
    must then be answered or dropped, not waited on.
    """
    parts = urlsplit(base)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(raw)
        writer.write_eof()
        data = await reader.read()
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/"):
        raise aiohttp.ServerDisconnectedError()
    ctype = next((v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
                  if k.lower() == "content-type"), "")
    return int(lines[0].split()[1]), ctype, body


async def still_serving(session: aiohttp.ClientSession, target: Target) -> None:
    """A normal client is served after the battery: directory, account read, EST cacerts."""
    async with session.get(target.url("/acme/directory")) as resp:
        assert resp.status == 200, resp.status
    async with session.head(target.directory["newNonce"]) as resp:
        target.client.nonce = resp.headers["Replay-Nonce"]
    resp, account = await target.client.post(target.kid)
    assert resp.status == 200 and account["status"] == "valid", account
    _, order = await target.client.new_order(["after.badinput.example"])
    assert order["status"] == "pending", order
    async with session.get(target.url("/.well-known/est/cacerts")) as est:
        assert est.status == 200, await est.text()


async def run(session: aiohttp.ClientSession, target: Target, seed: int, count: int,
              lanes: int = 4, groups: tuple[str, ...] = (MAIN,)) -> Report:
    """Cases 0 to ``count`` - 1 of ``groups``, sent over ``lanes`` lanes, judged.

    Each lane builds its cases as it goes (a long run never holds them all).
    """
    report = Report()

    def lane_cases(lane: int) -> Iterator[Case]:
        chosen = (case_at(seed, i, target) for i in range(lane, count, lanes))
        return (c for c in chosen if c.group in groups)

    started = time.monotonic()
    await asyncio.gather(*(Lane(session, target, report).run(lane_cases(i))
                           for i in range(lanes)))
    report.seconds = time.monotonic() - started
    return report
