"""A lean DNS stub: one query, one answer, from the configured resolvers.

Why not ``dns.asyncresolver``: under a burst of thousands of validations its
per-query overhead (message objects built and rebuilt, a socket wrapper per
query) costs about twice the CPU of this path and stalls the event loop that
also serves ACME requests. Answers are read by :mod:`dnsmessage`, which checks
the whole reply; a truncated answer is asked again over TCP.

Spoofing resistance is kept: each query goes out on its own connected UDP
socket (random source port from the kernel, answers from any other address
dropped by the kernel), with a random 16-bit ID, and an answer counts only if
its ID, QR bit and question match the query.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import struct
from collections.abc import Sequence
from typing import cast

import dns.exception
import dns.rcode
import dns.resolver

from gateway.errors import ErrorKind
from gateway.validation.attempt import ChallengeError
from gateway.validation.deadlines import DeadlineQueue
from gateway.validation.dnsmessage import (
    Answer,
    MalformedAnswer,
    MismatchedAnswer,
    parse_answer,
    query,
)

MAX_UDP_ANSWER = 65535
# How long one server gets before the next is asked (the attempt timeout bounds the total).
TRY_SECONDS = 2.0
# Passes over the servers that timed out (each pass gives each such server one more try).
ROUNDS = 2
# Answers that end the search: the name's owner spoke. Others mean "ask the next server".
FINAL_RCODES = frozenset({dns.rcode.NOERROR, dns.rcode.NXDOMAIN})
_TCP_LENGTH = struct.Struct("!H")


def system_nameservers() -> tuple[tuple[str, int], ...]:
    """The nameservers of /etc/resolv.conf, as (host, 53) pairs."""
    try:
        resolver = dns.resolver.Resolver(configure=True)
    except dns.exception.DNSException as exc:
        raise RuntimeError(f"no DNS resolvers: set [validation] resolvers ({exc})") from exc
    return tuple((str(ns), 53) for ns in resolver.nameservers)


class StubResolver:
    """Sends questions to each configured resolver in turn until one answers them."""

    def __init__(
        self, nameservers: Sequence[tuple[str, int]], try_seconds: float = TRY_SECONDS
    ) -> None:
        if not nameservers:
            raise ValueError("at least one nameserver is needed")
        self._nameservers = tuple(nameservers)
        self._try_seconds = try_seconds
        self._deadlines = DeadlineQueue()  # every try lasts try_seconds: they fall due in order

    async def query(self, asked: bytes) -> Answer:
        """The first final answer (NOERROR or NXDOMAIN) to the question section ``asked``.

        ``asked`` comes from :func:`dnsmessage.question`. ChallengeError(dns)
        when no server answers it (see :meth:`query_many`).
        """
        (answer,) = await self.query_many((asked,))
        if isinstance(answer, ChallengeError):
            raise answer
        return answer

    async def query_many(self, asks: Sequence[bytes]) -> list[Answer | ChallengeError]:
        """For each question section, its first final answer, or the ChallengeError(dns) why not.

        The questions a server is asked go out together on one socket (as A
        and AAAA do). A server that timed out on a question is asked it once
        more after the others (a lost UDP packet is common); one that answered
        it badly is not.
        """
        host, port = self._nameservers[0]
        first = _Exchange(host, port, list(asks))
        await first.ask(self._deadlines, self._try_seconds)
        if first.answered == len(asks):  # the usual case: the first server answered them all
            return cast(list[Answer | ChallengeError], first.outcomes)
        return await self._search(asks, first.outcomes)

    async def _search(
        self, asks: Sequence[bytes], first: list[Answer | str | None]
    ) -> list[Answer | ChallengeError]:
        """Go on from the first server's ``first`` outcomes, server by server, round by round."""
        answers: list[Answer | None] = [None] * len(asks)
        problems: list[list[str]] = [[] for _ in asks]
        # Per server, the questions to ask it this round: all at first, then those it timed out on.
        todo: Sequence[Sequence[int]] = [range(len(asks))] * len(self._nameservers)
        given: list[Answer | str | None] | None = first
        for _ in range(ROUNDS):
            again: list[list[int]] = [[] for _ in self._nameservers]
            for index, (host, port) in enumerate(self._nameservers):
                wanted = [i for i in todo[index] if answers[i] is None]
                if not wanted:
                    continue
                if given is not None:  # the first server's first round: already asked
                    outcomes, given = given, None
                else:
                    exchange = _Exchange(host, port, [asks[i] for i in wanted])
                    await exchange.ask(self._deadlines, self._try_seconds)
                    outcomes = exchange.outcomes
                for i, outcome in zip(wanted, outcomes, strict=True):
                    if isinstance(outcome, Answer):
                        answers[i] = outcome
                    elif outcome is None:
                        problems[i].append(f"{host}:{port} timed out")
                        again[index].append(i)
                    else:
                        problems[i].append(outcome)
                if None not in answers:
                    return cast(list[Answer | ChallengeError], answers)
            todo = again
        return [
            answer
            if answer is not None
            else ChallengeError(ErrorKind.DNS, "; ".join(dict.fromkeys(why)), retriable=True)
            for answer, why in zip(answers, problems, strict=True)
        ]


class _Exchange:
    """Questions to one server on one connected UDP socket, matched to replies by ID.

    A plain socket watched by a reader callback rather than a datagram
    transport: a transport per question cost three times the CPU. Connecting
    makes the kernel pick a random source port and drop datagrams from any
    other address. The try's time limit is a deadline that ends the wait, not
    a cancellation of the task.
    """

    def __init__(self, host: str, port: int, asks: list[bytes]) -> None:
        self.host, self.port = host, port
        self.asks = asks
        self.outcomes: list[Answer | str | None] = [None] * len(asks)
        self.answered = 0  # outcomes that are final answers
        self.pending: dict[int, int] = {}  # query ID -> index in asks
        self.truncated: list[tuple[int, int]] = []  # (query ID, index) to ask again over TCP
        self._done: asyncio.Future[None] | None = None
        random = os.urandom(2 * len(asks))  # one call for every ID, then more on a collision
        for offset in range(0, len(random), 2):
            self.pending.setdefault(int.from_bytes(random[offset : offset + 2]), len(self.pending))
        while len(self.pending) < len(asks):
            self.pending.setdefault(secrets.randbits(16), len(self.pending))

    async def ask(self, deadlines: DeadlineQueue, seconds: float) -> None:
        """Run the exchange; then each outcome is an Answer, a problem, or None (timed out)."""
        try:
            await self.run(deadlines, seconds)
        except TimeoutError:
            pass  # the questions still unanswered stay None: worth another try
        except (OSError, EOFError, MalformedAnswer, MismatchedAnswer) as exc:
            self.fail_pending(f"{self.host}:{self.port}: {_describe(exc)}")

    async def run(self, deadlines: DeadlineQueue, seconds: float) -> None:
        """Send every question, then take replies until each has its outcome or time is up.

        TimeoutError when the time ran out; the questions without an outcome stay None.
        """
        loop = deadlines.loop
        until = loop.time() + seconds
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect((self.host, self.port))  # an IP address (config checks it): no lookup
            for qid, index in self.pending.items():
                sock.send(query(qid, self.asks[index]))
            done = self._done = loop.create_future()
            fd = sock.fileno()
            loop.add_reader(fd, self._readable, sock)
            deadline = deadlines.call_at(until, self._time_out)
            try:
                await done
            finally:
                deadline.cancel()
                loop.remove_reader(fd)
        finally:
            sock.close()
        if self.truncated:
            async with asyncio.timeout_at(until):
                await self._over_tcp()

    def _readable(self, sock: socket.socket) -> None:
        """Take the replies that have come in; finish the wait once nothing is pending."""
        done = self._done
        assert done is not None
        while self.pending and not done.done():
            try:
                reply = sock.recv(MAX_UDP_ANSWER)
                self._take(reply)
            except (BlockingIOError, InterruptedError):
                return
            except (OSError, MismatchedAnswer) as exc:
                done.set_exception(exc)
                return
        if not done.done():
            done.set_result(None)

    def _time_out(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(TimeoutError())

    def _take(self, reply: bytes) -> None:
        qid = int.from_bytes(reply[:2], "big") if len(reply) >= 2 else -1
        index = self.pending.pop(qid, None)
        if index is None:  # a stray or spoofed reply: this server is not believed
            raise MismatchedAnswer("answer does not match the question")
        try:
            answer = parse_answer(reply, qid, self.asks[index])
        except (MalformedAnswer, MismatchedAnswer) as exc:
            self.outcomes[index] = f"{self.host}:{self.port}: {_describe(exc)}"
            return
        if answer.truncated:
            self.truncated.append((qid, index))
        else:
            self._settle(index, answer)

    async def _over_tcp(self) -> None:
        """Ask the truncated questions again over TCP (their outcome stays None on a timeout)."""
        for qid, index in self.truncated:
            asked = self.asks[index]
            try:
                wire = await _tcp_exchange(query(qid, asked), self.host, self.port)
                answer = parse_answer(wire, qid, asked)
            except TimeoutError:
                raise  # an OSError too, but one worth another try
            except (OSError, EOFError, MalformedAnswer, MismatchedAnswer) as exc:
                self.outcomes[index] = f"{self.host}:{self.port}: {_describe(exc)}"
                continue
            self._settle(index, answer)

    def _settle(self, index: int, answer: Answer) -> None:
        if answer.rcode in FINAL_RCODES:
            self.outcomes[index] = answer
            self.answered += 1
        else:
            rcode = dns.rcode.to_text(dns.rcode.Rcode.make(answer.rcode))
            self.outcomes[index] = f"{self.host}:{self.port} answered {rcode}"

    def fail_pending(self, problem: str) -> None:
        """Give every question still waiting (or truncated) ``problem`` as its outcome."""
        for index in [*self.pending.values(), *(index for _, index in self.truncated)]:
            if self.outcomes[index] is None:
                self.outcomes[index] = problem
        self.pending.clear()


async def _tcp_exchange(wire: bytes, host: str, port: int) -> bytes:
    """Ask over TCP (RFC 7766): a two-byte length before the query and before the answer."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(_TCP_LENGTH.pack(len(wire)) + wire)
        (length,) = _TCP_LENGTH.unpack(await reader.readexactly(_TCP_LENGTH.size))
        return await reader.readexactly(length)
    finally:
        writer.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (MalformedAnswer, MismatchedAnswer)):
        return f"malformed answer ({exc})"
    if isinstance(exc, EOFError):
        return "the connection closed before the answer was complete"
    return str(exc) or type(exc).__name__
