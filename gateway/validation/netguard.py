"""The network guard: which addresses the validator may connect to.

Every address a challenge would reach (each resolved A/AAAA record, each IP
identifier, each redirect target) passes :meth:`NetworkGuard.refusal` first, and
the connection then goes to that very address: a second lookup between check and
connect would let DNS rebinding slip past the guard.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK_NETWORKS: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
# RFC 1918, shared address space (RFC 6598) and unique local IPv6 (RFC 4193).
PRIVATE_NETWORKS: tuple[str, ...] = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
)


# Every character an IPv4 or IPv6 address may have: anything else is a name, told
# apart without the two failed parses (and their exceptions) ipaddress would cost.
_ADDRESS_CHARS = frozenset("0123456789abcdefABCDEF.:")


def parse_address(text: str) -> IPAddress | None:
    """The IP address in ``text`` (brackets and an IPv6 zone are refused), or None."""
    if not _ADDRESS_CHARS.issuperset(text):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class NetworkGuard:
    """Refuses addresses in blocked networks; loopback and private ranges follow the settings."""

    def __init__(
        self,
        blocked_networks: Iterable[str],
        *,
        allow_loopback: bool = False,
        allow_private: bool = True,
    ) -> None:
        names = list(blocked_networks)
        if not allow_loopback:
            names.extend(LOOPBACK_NETWORKS)
        if not allow_private:
            names.extend(PRIVATE_NETWORKS)
        self._networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in names
        )
        # Per IP version, each network as its first and last address as integers: a check
        # is then integer comparisons, not ipaddress's containment test per network.
        self._ranges: dict[int, tuple[tuple[int, int, IPNetwork], ...]] = {
            version: tuple(
                (int(n.network_address), int(n.broadcast_address), n)
                for n in self._networks
                if n.version == version
            )
            for version in (4, 6)
        }

    @property
    def networks(self) -> tuple[IPNetwork, ...]:
        """Every network refused, configured ones first."""
        return self._networks

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` must not be contacted, or None when it may be."""
        candidates: list[IPAddress] = [address]
        # An IPv4-mapped IPv6 address reaches the IPv4 host: judge it as that host too.
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        for candidate in candidates:
            value = int(candidate)
            for first, last, network in self._ranges[candidate.version]:
                if first <= value <= last:
                    return f"address {address} is in blocked network {network}"
        return None

    def allowed(self, address: IPAddress) -> bool:
        """True when ``address`` may be contacted."""
        return self.refusal(address) is None
