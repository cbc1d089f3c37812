"""Registered domains from the Public Suffix List."""

from __future__ import annotations

import pytest

from gateway.core.ratelimits.domains import registered_domain
from gateway.model.records import Identifier


@pytest.mark.parametrize("value,domain", [
    ("a.example.co.uk", "example.co.uk"),
    ("b.example.co.uk", "example.co.uk"),
    ("example.co.uk", "example.co.uk"),
    ("other.co.uk", "other.co.uk"),
    ("www.Example.COM", "example.com"),
    ("*.deep.sub.example.com", "example.com"),
    ("co.uk", "co.uk"),          # a public suffix counts as itself
    ("host.internal.", "host.internal"),
])
def test_registered_domain(value: str, domain: str) -> None:
    assert registered_domain(Identifier("dns", value)) == domain


def test_an_ip_address_counts_as_itself() -> None:
    assert registered_domain(Identifier("ip", "192.0.2.7")) == "192.0.2.7"
