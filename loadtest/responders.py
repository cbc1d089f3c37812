"""Challenge answers served on loopback so that validation by the server under test is real.

* :class:`Http01Responder`: an aiohttp server answering
  ``/.well-known/acme-challenge/<token>`` with the key authorization.
* :class:`DnsResponder`: a small UDP DNS server (dnspython message classes)
  answering ``TXT _acme-challenge.<name>`` with the DNS-01 digest, and ``A`` for
  every name with 127.0.0.1 so that HTTP-01 names resolve to the responder
  above. The server under test must use it as its resolver (Pebble:
  ``-dnsserver 127.0.0.1:PORT``; the gateway: ``validation.resolvers``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import cast

import dns.flags
import dns.message
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from aiohttp import web

LOOPBACK = "127.0.0.1"
LOOPBACK_A = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.A, LOOPBACK)


class Http01Responder:
    """Serves key authorizations by token on 127.0.0.1:``port``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.tokens: dict[str, str] = {}
        self.hits: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None

    async def _answer(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        answer = self.tokens.get(token)
        self.hits["found" if answer else "missing"] += 1
        if answer is None:
            return web.Response(status=404, text="unknown token")
        return web.Response(text=answer, content_type="application/octet-stream")

    async def start(self) -> None:
        """Start listening; raises OSError when the port is taken."""
        app = web.Application()
        app.router.add_get("/.well-known/acme-challenge/{token}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOOPBACK, self.port).start()

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner:
            await self._runner.cleanup()
            self._runner = None


class _DnsProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: DnsResponder) -> None:
        self.owner = owner
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport does not subclass asyncio.DatagramTransport, hence the cast.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except Exception:  # noqa: BLE001 - garbage on the socket is dropped, as resolvers do
            self.owner.queries["malformed"] += 1
            return
        if self.transport:
            self.transport.sendto(self.owner.answer(query).to_wire(), addr)


class DnsResponder:
    """Answers TXT for published DNS-01 names and A 127.0.0.1 for every name, over UDP."""

    def __init__(self, port: int, address: str = LOOPBACK) -> None:
        self.port = port
        self.address = address
        # Lower-case absolute names ("_acme-challenge.x.test.") → TXT records, built once at
        # publish time: parsing rdata text per query would double the cost of an answer.
        self.txt: dict[str, list[dns.rdata.Rdata]] = {}
        self.queries: Counter[str] = Counter()
        self._transport: asyncio.DatagramTransport | None = None

    def publish(self, name: str, value: str) -> None:
        """Add a TXT value at ``_acme-challenge.<name>``."""
        record = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, f'"{value}"')
        self.txt.setdefault(self._key(name), []).append(record)

    def withdraw(self, name: str, value: str) -> None:
        """Remove one TXT value at ``_acme-challenge.<name>`` (a wildcard may share the name)."""
        key = self._key(name)
        record = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, f'"{value}"')
        remaining = [r for r in self.txt.get(key, []) if r != record]
        if remaining:
            self.txt[key] = remaining
        else:
            self.txt.pop(key, None)

    @staticmethod
    def _key(name: str) -> str:
        return f"_acme-challenge.{name.removeprefix('*.')}.".lower()

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        """The response to one query (authoritative; empty NOERROR when nothing matches)."""
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            name = question.name.to_text().lower()
            self.queries[dns.rdatatype.to_text(question.rdtype)] += 1
            if question.rdtype == dns.rdatatype.TXT and name in self.txt:
                response.answer.append(dns.rrset.from_rdata_list(question.name, 0, self.txt[name]))
            elif question.rdtype == dns.rdatatype.A and not name.startswith("_acme-challenge."):
                response.answer.append(dns.rrset.from_rdata(question.name, 0, LOOPBACK_A))
        return response

    async def start(self) -> None:
        """Bind the UDP socket; raises OSError when the port is taken."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _DnsProtocol(self), local_addr=(self.address, self.port)
        )
        self._transport = transport

    async def stop(self) -> None:
        """Close the socket."""
        if self._transport:
            self._transport.close()
            self._transport = None
