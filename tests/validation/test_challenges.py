"""Challenge types by name: which identifiers each may validate."""

from __future__ import annotations

import pytest

from gateway import config
from gateway.errors import ConfigError
from gateway.validation.challenges import CHALLENGE_TYPES, offered_for

ALL = ("http-01", "dns-01", "tls-alpn-01")


@pytest.mark.parametrize(("identifier_type", "wildcard", "offered"), [
    ("dns", False, ["http-01", "dns-01", "tls-alpn-01"]),
    ("dns", True, ["dns-01"]),                       # RFC 8555 §7.1.3
    ("ip", False, ["http-01", "tls-alpn-01"]),       # RFC 8738 §7
    ("email", False, []),
])
def test_offered_for(identifier_type: str, wildcard: bool, offered: list[str]) -> None:
    assert offered_for(identifier_type, wildcard, ALL) == offered


def test_only_enabled_types_are_offered_in_the_configured_order() -> None:
    assert offered_for("dns", False, ("tls-alpn-01", "http-01")) == ["tls-alpn-01", "http-01"]
    assert offered_for("dns", False, ("nope-01",)) == []


def test_the_config_knows_the_same_types() -> None:
    assert config.parse({}, "t").validation.challenge_types == tuple(CHALLENGE_TYPES) == ALL
    with pytest.raises(ConfigError, match="unknown challenge type 'dns-02'; known: http-01"):
        config.parse({"validation": {"challenge_types": ["dns-02"]}}, "t")
