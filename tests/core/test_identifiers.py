"""The syntax of DNS and IP identifiers, one rule per row."""

from __future__ import annotations

import pytest

from gateway.core import identifiers
from gateway.core.identifiers import IdentifierRefused
from gateway.errors import ErrorKind

MALFORMED, REJECTED = ErrorKind.MALFORMED, ErrorKind.REJECTED_IDENTIFIER
LONG_LABEL = "a" * 64


@pytest.mark.parametrize("value,canonical", [
    ("www.example.com", "www.example.com"),
    ("WWW.Example.COM", "www.example.com"),
    ("*.example.com", "*.example.com"),
    ("a-b.example.com", "a-b.example.com"),
    ("1.example.com", "1.example.com"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
    ("example.xn--p1ai", "example.xn--p1ai"),
    ("a" * 63 + ".example.com", "a" * 63 + ".example.com"),
    (".".join(["a" * 63] * 3 + ["b" * 61]), ".".join(["a" * 63] * 3 + ["b" * 61])),  # 253
])
def test_well_formed_dns_names(value: str, canonical: str) -> None:
    assert identifiers.dns_name(value) == canonical


@pytest.mark.parametrize("value,kind,reason", [
    ("", MALFORMED, "empty"),
    ("a\n.example.test", MALFORMED, "'\\n'"),
    ("a.example.test\n", MALFORMED, "'\\n'"),
    ("a\x00.example.test", MALFORMED, "'\\x00'"),
    ("a b.example.test", MALFORMED, "' '"),
    ("a\t.example.test", MALFORMED, "'\\t'"),
    ("a_b.example.com", MALFORMED, "'_'"),
    ("a/b.example.com", MALFORMED, "'/'"),
    ("bücher.example", MALFORMED, "A-labels"),
    ("xn--bcher-kva.example\u200b", MALFORMED, "non-ASCII"),
    ("example.com.", MALFORMED, "trailing dot"),
    ("*.example.com.", MALFORMED, "trailing dot"),
    (".example.com", MALFORMED, "empty label"),
    ("bad..example.com", MALFORMED, "empty label"),
    ("-a.example.com", MALFORMED, "hyphen"),
    ("a-.example.com", MALFORMED, "hyphen"),
    (LONG_LABEL + ".example.com", MALFORMED, "63"),
    (".".join(["a" * 63] * 3 + ["b" * 62]), MALFORMED, "253"),
    ("ab--c.example.com", REJECTED, "positions 3-4"),
    ("xn--zz.example.com", MALFORMED, "IDNA"),
    ("xn--a.example.com", MALFORMED, "IDNA"),
    ("xn--.example.com", MALFORMED, "hyphen"),
    ("example.123", MALFORMED, "all-numeric"),
    ("192.0.2.1", MALFORMED, "type ip"),
    ("localhost", REJECTED, "fully qualified"),
    ("com", REJECTED, "fully qualified"),
    ("*.com", REJECTED, "fully qualified"),
    ("*", REJECTED, "fully qualified"),
    ("a.*.example.com", MALFORMED, "wildcard"),
    ("*a.example.com", MALFORMED, "wildcard"),
    ("**.example.com", MALFORMED, "wildcard"),
    ("*.*.example.com", MALFORMED, "wildcard"),
])
def test_ill_formed_dns_names(value: str, kind: ErrorKind, reason: str) -> None:
    with pytest.raises(IdentifierRefused) as err:
        identifiers.dns_name(value)
    assert err.value.kind is kind
    assert reason in err.value.why


@pytest.mark.parametrize("value", ["192.0.2.1", "0.0.0.0", "2001:db8::1", "::1",
                                   "2001:db8:0:1:1:1:1:1", "fe80::1"])
def test_canonical_ip_addresses(value: str) -> None:
    assert identifiers.ip_address(value) == value


@pytest.mark.parametrize("value,reason", [
    ("127.000.0.1", "not an IP address"),
    ("01.2.3.4", "not an IP address"),
    ("1.2.3", "not an IP address"),
    ("1.2.3.4.", "not an IP address"),
    (" 1.2.3.4", "not an IP address"),
    ("1.2.3.4\n", "not an IP address"),
    ("0x7f.0.0.1", "not an IP address"),
    ("2001:DB8::1", "write it as 2001:db8::1"),
    ("2001:db8:0::1", "write it as 2001:db8::1"),
    ("2001:0db8::1", "write it as 2001:db8::1"),
    ("::ffff:1.2.3.4", "ask for 1.2.3.4"),
    ("::ffff:102:304", "ask for 1.2.3.4"),
    ("fe80::1%eth0", "zone index"),
    ("[::1]", "not an IP address"),
    ("", "not an IP address"),
])
def test_non_canonical_ip_addresses(value: str, reason: str) -> None:
    with pytest.raises(IdentifierRefused) as err:
        identifiers.ip_address(value)
    assert err.value.kind is MALFORMED
    assert reason in err.value.why
