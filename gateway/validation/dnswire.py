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
import secrets
import socket
import struct
from collections.abc import Sequence

import dns.exception
import dns.rcode
import dns.resolver

from gateway.errors import ErrorKind
from gateway.validation.attempt import ChallengeError
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


class _ServerProblem(Exception):
    """One server's unusable answer (its message says which server and why)."""


class StubResolver:
    """Sends one question to each configured resolver in turn until one answers it."""

    def __init__(
        self, nameservers: Sequence[tuple[str, int]], try_seconds: float = TRY_SECONDS
    ) -> None:
        if not nameservers:
            raise ValueError("at least one nameserver is needed")
        self._nameservers = tuple(nameservers)
        self._try_seconds = try_seconds

    async def query(self, asked: bytes) -> Answer:
        """The first final answer (NOERROR or NXDOMAIN) to the question section ``asked``.

        ``asked`` comes from :func:`dnsmessage.question`. A server that timed
        out is asked once more after the others (a lost UDP packet is common);
        one that answered badly is not. ChallengeError(dns) when none answers.
        """
        problems: list[str] = []
        servers = self._nameservers
        for _ in range(ROUNDS):
            timed_out: list[tuple[str, int]] = []
            for host, port in servers:
                try:
                    return await self._final_answer(asked, host, port)
                except TimeoutError:
                    timed_out.append((host, port))
                    problems.append(f"{host}:{port} timed out")
                except _ServerProblem as exc:
                    problems.append(str(exc))
            servers = tuple(timed_out)
        raise ChallengeError(ErrorKind.DNS, "; ".join(dict.fromkeys(problems)), retriable=True)

    async def _final_answer(self, asked: bytes, host: str, port: int) -> Answer:
        try:
            answer = await self._ask(asked, host, port)
        except TimeoutError:
            raise  # an OSError too, but one worth another try
        except (OSError, EOFError, MalformedAnswer, MismatchedAnswer) as exc:
            raise _ServerProblem(f"{host}:{port}: {_describe(exc)}") from exc
        if answer.rcode not in FINAL_RCODES:
            raise _ServerProblem(
                f"{host}:{port} answered {dns.rcode.to_text(dns.rcode.Rcode.make(answer.rcode))}"
            )
        return answer

    async def _ask(self, asked: bytes, host: str, port: int) -> Answer:
        qid = secrets.randbits(16)
        wire = query(qid, asked)
        async with asyncio.timeout(self._try_seconds):
            answer = parse_answer(await _udp_exchange(wire, host, port), qid, asked)
            if answer.truncated:
                answer = parse_answer(await _tcp_exchange(wire, host, port), qid, asked)
        return answer


async def _udp_exchange(wire: bytes, host: str, port: int) -> bytes:
    """Send one datagram on a fresh connected socket and return the first reply.

    A plain socket rather than a datagram transport: a transport per question
    cost three times the CPU. Connecting makes the kernel pick a random source
    port and drop datagrams from any other address.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect((host, port))  # an IP address (config checks it): no lookup
        sock.send(wire)
        return await asyncio.get_running_loop().sock_recv(sock, MAX_UDP_ANSWER)
    finally:
        sock.close()


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
