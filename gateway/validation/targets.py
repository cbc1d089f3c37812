"""From a host (name or IP literal) to the checked addresses a challenge may connect to.

Names are resolved with the validator's own resolver, every address goes
through the network guard, and callers connect to the addresses returned here,
never to a name: the check and the connection see the same address.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, TypeVar

from gateway.errors import ErrorKind
from gateway.validation.attempt import Attempt, ChallengeError
from gateway.validation.dnsclient import DnsClient
from gateway.validation.netguard import IPAddress, NetworkGuard, parse_address

T = TypeVar("T")


class Target(NamedTuple):
    """A host's resolved addresses and the subset the guard lets us contact."""

    host: str
    resolved: tuple[IPAddress, ...]
    allowed: tuple[IPAddress, ...]

    def connection_order(self) -> list[IPAddress]:
        """IPv6 first, then IPv4 as the fallback: one address of each family at most."""
        v6 = v4 = None
        for address in self.allowed:
            if address.version == 6:
                v6 = v6 or address
            else:
                v4 = v4 or address
        return [a for a in (v6, v4) if a is not None]


async def resolve_target(
    host: str,
    dns: DnsClient,
    guard: NetworkGuard,
    attempt: Attempt,
    blocked_kind: ErrorKind,
) -> Target:
    """Resolve ``host`` and filter it through the guard; raise when nothing may be contacted.

    ``blocked_kind`` is the error kind used when every address is refused: a
    refused IP identifier is a ``rejectedIdentifier``, a refused name a ``dns``
    problem, a refused redirect a ``connection`` problem.
    """
    literal = parse_address(host)
    if literal is not None:
        resolved: tuple[IPAddress, ...] = (literal,)
    else:
        attempt.enter(ErrorKind.DNS, f"resolving {host}")
        resolved = tuple(await dns.addresses(host))
    allowed = tuple(a for a in resolved if guard.allowed(a))
    if not allowed:
        reason = guard.refusal(resolved[0])
        raise ChallengeError(blocked_kind, f"{host}: refusing to connect: {reason}")
    return Target(host, resolved, allowed)


async def try_in_order(
    target: Target,
    attempt: Attempt,
    remaining: Callable[[], float],
    connect: Callable[[IPAddress], Awaitable[T]],
) -> T:
    """Run ``connect`` on IPv6 then IPv4, falling back only when the connection itself failed.

    The first address gets half the time left, so a black-holed IPv6 route
    still leaves time for IPv4.
    """
    order = target.connection_order()
    for index, address in enumerate(order):
        last = index == len(order) - 1
        try:
            if last:
                return await connect(address)
            async with asyncio.timeout(max(remaining() / 2, 0.001)):
                return await connect(address)
        except TimeoutError as exc:
            error = ChallengeError(
                ErrorKind.CONNECTION, f"timed out while {attempt.stage}", retriable=True
            )
            if last:
                raise error from exc
        except ChallengeError as exc:
            if last or exc.kind not in (ErrorKind.CONNECTION, ErrorKind.TLS):
                raise
    raise AssertionError("unreachable: connection_order is never empty")


def note_address(record: dict[str, Any], address: IPAddress | str) -> None:
    """Record the address about to be used; after a fallback, keep every address tried."""
    previous = record.get("addressUsed")
    if previous is not None:
        record.setdefault("addressesTried", [previous]).append(str(address))
    record["addressUsed"] = str(address)


def host_header(host: str, port: int, default_port: int) -> str:
    """The Host header (or authority) for ``host``: IPv6 bracketed, default port left out."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port == default_port else f"{shown}:{port}"


def reverse_name(address: str) -> str:
    """The reverse-DNS name of an IP address (RFC 8738 §6), without the final dot."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return ".".join(reversed(str(ip).split("."))) + ".in-addr.arpa"
    nibbles = ip.exploded.replace(":", "")
    return ".".join(reversed(nibbles)) + ".ip6.arpa"
