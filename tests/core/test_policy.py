"""Identifier normalisation and profile rules."""

from __future__ import annotations

import pytest

from gateway.config import ProfileSettings
from gateway.core import policy
from gateway.errors import ErrorKind, GatewayError
from gateway.model.records import Identifier

OPEN = ProfileSettings(name="open", ca="local")


@pytest.mark.parametrize("ident,want", [
    (Identifier("dns", "WWW.Example.COM"), Identifier("dns", "www.example.com")),
    (Identifier("dns", "*.example.com"), Identifier("dns", "*.example.com")),
    (Identifier("ip", "2001:db8::1"), Identifier("ip", "2001:db8::1")),
    (Identifier("ip", "192.0.2.1"), Identifier("ip", "192.0.2.1")),
])
def test_normalise(ident: Identifier, want: Identifier) -> None:
    assert policy.normalise(ident) == want


@pytest.mark.parametrize("ident,kind", [
    (Identifier("dns", "example"), ErrorKind.REJECTED_IDENTIFIER),
    (Identifier("dns", "-bad.example.com"), ErrorKind.MALFORMED),
    (Identifier("dns", "a_b.example.com"), ErrorKind.MALFORMED),
    (Identifier("dns", "a." * 130 + "com"), ErrorKind.MALFORMED),
    (Identifier("dns", "a\n.example.test"), ErrorKind.MALFORMED),
    (Identifier("ip", "2001:DB8:0::1"), ErrorKind.MALFORMED),
    (Identifier("dns", "10.0.0.1"), ErrorKind.MALFORMED),
    (Identifier("dns", "x.*.example.com"), ErrorKind.MALFORMED),
    (Identifier("ip", "1.2.3"), ErrorKind.MALFORMED),
    (Identifier("email", "a@b.c"), ErrorKind.UNSUPPORTED_IDENTIFIER),
])
def test_malformed_identifiers(ident: Identifier, kind: ErrorKind) -> None:
    with pytest.raises(GatewayError) as err:
        policy.normalise(ident)
    assert err.value.kind is kind
    assert err.value.subproblems[0].identifier_value == ident.value


@pytest.mark.parametrize("profile,ident,allowed", [
    (ProfileSettings(name="p", ca="l", allow_wildcards=False), "*.example.com", False),
    (ProfileSettings(name="p", ca="l", allow_ip=False), "ip:192.0.2.1", False),
    (ProfileSettings(name="p", ca="l", allowed_patterns=("*.corp.example",)),
     "a.corp.example", True),
    (ProfileSettings(name="p", ca="l", allowed_patterns=("*.corp.example",)),
     "a.example.com", False),
    (ProfileSettings(name="p", ca="l", allowed_patterns=(r"re:^[a-z]+\.lab\.example$",)),
     "web.lab.example", True),
    (ProfileSettings(name="p", ca="l", allowed_patterns=(r"re:^[a-z]+\.lab\.example$",)),
     "web1.lab.example", False),
])
def test_profile_rules(profile: ProfileSettings, ident: str, allowed: bool) -> None:
    value = Identifier("ip", ident[3:]) if ident.startswith("ip:") else Identifier("dns", ident)
    if allowed:
        policy.check_identifier(profile, value)
        return
    with pytest.raises(GatewayError) as err:
        policy.check_identifier(profile, value)
    assert err.value.kind is ErrorKind.REJECTED_IDENTIFIER
    assert repr(profile.name) in err.value.detail


def test_identifiers_are_deduplicated_and_counted() -> None:
    idents = [Identifier("dns", "A.example.com"), Identifier("dns", "a.example.com")]
    assert policy.check_identifiers(OPEN, idents) == (Identifier("dns", "a.example.com"),)
    small = ProfileSettings(name="small", ca="l", max_identifiers=1)
    with pytest.raises(GatewayError) as err:
        policy.check_identifiers(small, idents)
    assert "maximum" in err.value.detail
