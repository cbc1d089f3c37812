"""Address lookups: both families at once, bare CNAMEs followed, readable failures."""

from __future__ import annotations

import ipaddress

import dns.rdatatype
import pytest

from gateway.validation.attempt import ChallengeError
from gateway.validation.dnsclient import DnsClient, NoRecords
from gateway.validation.dnswire import StubResolver
from tests.validation.dnsserver import DnsResponder


def client(server: DnsResponder) -> DnsClient:
    return DnsClient(StubResolver([("127.0.0.1", server.port)], try_seconds=0.3))


async def test_ipv6_comes_before_ipv4(dns_server: DnsResponder) -> None:
    dns_server.zone.add("dual.test", "A", "192.0.2.1")
    dns_server.zone.add("dual.test", "AAAA", "2001:db8::1")

    found = await client(dns_server).addresses("Dual.Test")

    assert found == [ipaddress.ip_address("2001:db8::1"), ipaddress.ip_address("192.0.2.1")]


async def test_bare_cnames_are_followed_for_both_families(dns_server: DnsResponder) -> None:
    dns_server.zone.add("alias.test", "CNAME", "real.test.")
    dns_server.zone.add("real.test", "A", "192.0.2.5")
    dns_server.zone.add("real.test", "AAAA", "2001:db8::5")

    found = await client(dns_server).addresses("alias.test")

    assert found == [ipaddress.ip_address("2001:db8::5"), ipaddress.ip_address("192.0.2.5")]
    assert ("real.test", "AAAA") in dns_server.zone.queries


async def test_cname_to_a_missing_name_is_nxdomain(dns_server: DnsResponder) -> None:
    dns_server.zone.add("alias.test", "CNAME", "gone.test.")

    with pytest.raises(NoRecords, match="NXDOMAIN") as caught:
        await client(dns_server).addresses("alias.test")
    assert caught.value.nxdomain


async def test_name_without_addresses(dns_server: DnsResponder) -> None:
    dns_server.zone.add("mail.test", "TXT", '"no address here"')

    with pytest.raises(NoRecords, match="no A or AAAA record found for mail.test"):
        await client(dns_server).addresses("mail.test")


async def test_failed_lookup_names_the_family(dns_server: DnsResponder) -> None:
    dns_server.zone.servfail.add("broken.test")

    with pytest.raises(ChallengeError, match="AAAA lookup for broken.test failed") as caught:
        await client(dns_server).addresses("broken.test")
    assert caught.value.retriable and not isinstance(caught.value, NoRecords)


async def test_txt_records_come_back_as_dnspython_rdata(dns_server: DnsResponder) -> None:
    dns_server.zone.add("t.test", "TXT", '"a" "b"')

    (record,) = await client(dns_server).records("t.test", dns.rdatatype.TXT)

    assert record.strings == (b"a", b"b")  # type: ignore[attr-defined]
