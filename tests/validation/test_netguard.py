"""The network guard: defaults, loopback and private switches, configured networks."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.validation.netguard import NetworkGuard, parse_address
from gateway.validation.settings import DEFAULT_BLOCKED_NETWORKS


def guard(
    allow_loopback: bool = False, allow_private: bool = True, extra: tuple[str, ...] = ()
) -> NetworkGuard:
    return NetworkGuard(
        DEFAULT_BLOCKED_NETWORKS + extra, allow_loopback=allow_loopback, allow_private=allow_private
    )


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("169.254.169.254", True),  # cloud metadata
        ("100.100.100.200", True),  # Alibaba metadata
        ("fd00:ec2::254", True),  # AWS IPv6 metadata
        ("fe80::1", True),
        ("224.0.0.1", True),
        ("ff02::1", True),
        ("0.0.0.0", True),
        ("::", True),
        ("255.255.255.255", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # IPv4-mapped loopback
        ("::ffff:169.254.169.254", True),
        ("10.1.2.3", False),
        ("192.168.1.1", False),
        ("fd12::1", False),
        ("192.0.2.10", False),
        ("2001:db8::1", False),
    ],
)
def test_defaults(address: str, blocked: bool) -> None:
    assert (guard().refusal(ipaddress.ip_address(address)) is not None) is blocked


def test_allow_loopback_opens_loopback_only() -> None:
    g = guard(allow_loopback=True)
    assert g.allowed(ipaddress.ip_address("127.0.0.1"))
    assert g.allowed(ipaddress.ip_address("::1"))
    assert not g.allowed(ipaddress.ip_address("169.254.169.254"))


@pytest.mark.parametrize(
    "address", ["10.0.0.1", "172.16.5.5", "192.168.0.1", "100.64.0.1", "fd00::1"]
)
def test_disallow_private(address: str) -> None:
    refusal = guard(allow_private=False).refusal(ipaddress.ip_address(address))
    assert refusal is not None and address.split("::")[0] in refusal


def test_configured_network_is_blocked_and_named() -> None:
    g = guard(extra=("192.0.2.0/24",))
    assert g.refusal(ipaddress.ip_address("192.0.2.99")) == (
        "address 192.0.2.99 is in blocked network 192.0.2.0/24"
    )
    assert g.allowed(ipaddress.ip_address("198.51.100.1"))


@pytest.mark.parametrize(
    "address, blocked",
    [
        ("192.0.1.255", False),
        ("192.0.2.0", True),
        ("192.0.2.255", True),
        ("192.0.3.0", False),
        ("::ffff:192.0.2.7", True),  # IPv4-mapped: judged as the IPv4 host too
        ("2001:db8::", True),
        ("2001:db8:0:ffff:ffff:ffff:ffff:ffff", True),
        ("2001:db8:1::", False),
    ],
)
def test_network_edges(address: str, blocked: bool) -> None:
    g = guard(extra=("192.0.2.0/24", "2001:db8::/48"))
    assert g.allowed(ipaddress.ip_address(address)) is not blocked


def test_parse_address() -> None:
    assert parse_address("::1") == ipaddress.ip_address("::1")
    assert parse_address("example.test") is None
    assert parse_address("[::1]") is None
    assert parse_address("fe80::1%eth0") is None  # a zone names a local interface
    assert parse_address("192.0.2.1") == ipaddress.ip_address("192.0.2.1")
    assert parse_address("FE80::A") == ipaddress.ip_address("fe80::a")
    assert parse_address("") is None and parse_address("1.2.3") is None
