"""A lean DNS stub: one query, one answer, from the configured resolvers.

Why not ``dns.asyncresolver``: under a burst of thousands of validations its
per-query overhead (message objects built and rebuilt, a socket wrapper per
query) costs about twice the CPU of this path and stalls the event loop that
also serves ACME requests. dnspython still parses every answer (robustly), and
still carries a truncated answer over TCP.

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
from typing import cast

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver

from gateway.errors import ErrorKind
from gateway.validation.attempt import ChallengeError

RD_FLAG = 0x0100
MAX_UDP_ANSWER = 65535
# How long one server gets before the next is asked (the attempt timeout bounds the total).
TRY_SECONDS = 2.0
# Passes over the servers that timed out (each pass gives each such server one more try).
ROUNDS = 2
# Answers that end the search: the name's owner spoke. Others mean "ask the next server".
FINAL_RCODES = frozenset({dns.rcode.NOERROR, dns.rcode.NXDOMAIN})


def system_nameservers() -> tuple[tuple[str, int], ...]:
    """The nameservers of /etc/resolv.conf, as (host, 53) pairs."""
    try:
        resolver = dns.resolver.Resolver(configure=True)
    except dns.exception.DNSException as exc:
        raise RuntimeError(f"no DNS resolvers: set [validation] resolvers ({exc})") from exc
    return tuple((str(ns), 53) for ns in resolver.nameservers)


class MismatchedAnswer(Exception):
    """An answer whose ID, QR bit or question is not that of the query sent."""


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

    async def query(
        self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> dns.message.Message:
        """The first final answer (NOERROR or NXDOMAIN); ChallengeError(dns) when none comes.

        A server that timed out is asked once more after the others (a lost UDP
        packet is common); one that answered badly is not.
        """
        problems: list[str] = []
        servers = list(self._nameservers)
        for _ in range(ROUNDS):
            timed_out: list[tuple[str, int]] = []
            for host, port in servers:
                try:
                    return await self._final_answer(qname, rdtype, host, port)
                except TimeoutError:
                    timed_out.append((host, port))
                    problems.append(f"{host}:{port} timed out")
                except _ServerProblem as exc:
                    problems.append(str(exc))
            servers = timed_out
        raise ChallengeError(ErrorKind.DNS, "; ".join(dict.fromkeys(problems)), retriable=True)

    async def _final_answer(
        self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, host: str, port: int
    ) -> dns.message.Message:
        where = f"{host}:{port}"
        try:
            answer = await self._ask(qname, rdtype, host, port)
        except TimeoutError:
            raise  # an OSError too, but one worth another try
        except (OSError, dns.exception.DNSException, MismatchedAnswer) as exc:
            raise _ServerProblem(f"{where}: {_describe(exc)}") from exc
        if answer.rcode() not in FINAL_RCODES:
            raise _ServerProblem(f"{where} answered {dns.rcode.to_text(answer.rcode())}")
        return answer

    async def _ask(
        self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, host: str, port: int
    ) -> dns.message.Message:
        qid = secrets.randbits(16)
        header = struct.pack("!6H", qid, RD_FLAG, 1, 0, 0, 0)
        wire = header + cast(bytes, qname.to_wire()) + struct.pack("!2H", rdtype, 1)
        async with asyncio.timeout(self._try_seconds):
            data = await _udp_exchange(wire, host, port)
        answer = dns.message.from_wire(data)
        if not _answers(answer, qid, qname, rdtype):
            raise MismatchedAnswer("answer does not match the question")
        if answer.flags & dns.flags.TC:
            query = dns.message.make_query(qname, rdtype)
            return await dns.asyncquery.tcp(query, host, timeout=self._try_seconds, port=port)
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


def _answers(answer: dns.message.Message, qid: int, qname: dns.name.Name, rdtype: int) -> bool:
    if answer.id != qid or not answer.flags & dns.flags.QR or len(answer.question) != 1:
        return False
    question = answer.question[0]
    return question.name == qname and question.rdtype == rdtype


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (dns.exception.DNSException, MismatchedAnswer)):
        return f"malformed answer ({exc})"
    return str(exc) or type(exc).__name__
