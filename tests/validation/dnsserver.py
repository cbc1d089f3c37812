"""A loopback DNS responder for tests: UDP and TCP on one port of 127.0.0.1.

Records are added as presentation text (``zone.add("a.test", "TXT", '"x"')``).
Names can be told to misbehave: answer SERVFAIL, never answer, send bytes
that are not DNS, or answer with the wrong query ID. Large UDP answers are
truncated (TC) so that clients retry over TCP, as a real server does. CNAMEs
are answered bare, the way an authoritative server outside the target zone
would answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import defaultdict
from dataclasses import dataclass, field
from typing import cast

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

UDP_LIMIT = 512


@dataclass
class Zone:
    """Records by (name, type), plus names that misbehave."""

    records: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    servfail: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)
    garbage: set[str] = field(default_factory=set)
    wrong_id: set[str] = field(default_factory=set)
    drop_once: set[str] = field(default_factory=set)
    # Answers given to the first query only (a rebinding attacker's first, harmless answer).
    first_answer: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    queries: list[tuple[str, str]] = field(default_factory=list)
    # The source (address, port) of each UDP query, in arrival order.
    udp_sources: list[tuple[str, int]] = field(default_factory=list)

    def add(self, name: str, rdtype: str, *values: str) -> None:
        """Add records; names are case-insensitive and without the final dot."""
        self.records[(_key(name), rdtype.upper())].extend(values)

    def exists(self, name: str) -> bool:
        """True when any record type exists at ``name``."""
        return any(n == _key(name) for n, _ in self.records)


def _key(name: str) -> str:
    return name.lower().rstrip(".")


class DnsResponder:
    """Serves a :class:`Zone` on 127.0.0.1 over UDP and TCP on the same port."""

    def __init__(self, zone: Zone | None = None) -> None:
        self.zone = zone or Zone()
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._closing = asyncio.Event()

    async def start(self) -> None:
        """Bind UDP on a free port, then TCP on the same port (retrying if that port is taken)."""
        loop = asyncio.get_running_loop()
        for _ in range(20):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=("127.0.0.1", 0)
            )
            port = transport.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, "127.0.0.1", port)
            except OSError:
                transport.close()
                continue
            self._udp, self.port = transport, port
            return
        raise RuntimeError("no free port for the test DNS responder")

    async def close(self) -> None:
        """Stop both listeners and release the connections kept silent."""
        self._closing.set()
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    def answer(self, wire: bytes, limit: int | None) -> bytes | None:
        """The reply to one query (None: stay silent), truncated to ``limit`` bytes if given."""
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name, rdtype = _key(question.name.to_text()), dns.rdatatype.to_text(question.rdtype)
        self.zone.queries.append((name, rdtype))
        if name in self.zone.silent:
            return None
        if name in self.zone.drop_once:
            self.zone.drop_once.discard(name)  # a lost packet: the next query gets through
            return None
        if name in self.zone.garbage:
            return wire[:2] + b"\xff" * 7
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        self._fill(response, question.name, name, rdtype)
        if name in self.zone.wrong_id:
            response.id = (query.id + 1) % 65536  # what a blind spoofer would send
        data = response.to_wire()
        if limit is not None and len(data) > limit:
            response.answer.clear()
            response.flags |= dns.flags.TC
            data = response.to_wire()
        return data

    def _fill(
        self, response: dns.message.Message, qname: dns.name.Name, name: str, rdtype: str
    ) -> None:
        if name in self.zone.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return
        cname = self.zone.records.get((name, "CNAME"))
        if cname and rdtype != "CNAME":
            rrset = dns.rrset.from_text_list(qname, 60, "IN", "CNAME", cname[:1])
            response.answer.append(rrset)
            return
        values = self.zone.first_answer.pop((name, rdtype), None) or self.zone.records.get(
            (name, rdtype)
        )
        if values:
            response.answer.append(dns.rrset.from_text_list(qname, 60, "IN", rdtype, values))
        elif not self.zone.exists(name):
            response.set_rcode(dns.rcode.NXDOMAIN)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = self.answer(await reader.readexactly(length), None)
                if reply is None:
                    await self._closing.wait()  # a silent server: the client must time out
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        writer.close()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsResponder) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server.zone.udp_sources.append(addr)
        reply = self.server.answer(data, UDP_LIMIT)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)
