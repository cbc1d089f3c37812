"""CAA: the decision rules (table-driven) and the record-set search over loopback DNS."""

from __future__ import annotations

import pytest

from gateway.errors import ErrorKind
from gateway.validation import ChallengeTask
from gateway.validation.caa import CaaRecord, evaluate, parse_issue_value
from gateway.validation.dns01 import txt_digest
from tests.validation.conftest import MakeVA
from tests.validation.dnsserver import DnsResponder

CA = "ca.example.net"
ACCOUNT = "https://acme.example.net/acme/acct/42"


def issue(value: str, tag: str = "issue", flags: int = 0) -> CaaRecord:
    return CaaRecord(flags, tag, value)


@pytest.mark.parametrize(
    ("records", "wildcard", "method", "allowed"),
    [
        ([issue(CA)], False, "http-01", True),
        ([issue("CA.Example.NET.")], False, "http-01", True),
        ([issue("other-ca.test")], False, "http-01", False),
        ([issue("other-ca.test"), issue(CA)], False, "http-01", True),
        ([issue(";")], False, "http-01", False),
        ([issue("")], False, "http-01", False),
        ([issue("mailto:x@y", "iodef")], False, "http-01", True),
        (
            [issue(CA, "issuewild")],
            False,
            "http-01",
            True,
        ),  # issuewild alone says nothing for a plain name
        ([issue(";", "issuewild"), issue(CA)], False, "dns-01", True),
        ([issue(";", "issuewild"), issue(CA)], True, "dns-01", False),
        ([issue(CA, "issuewild"), issue(";")], True, "dns-01", True),
        ([issue(CA)], True, "dns-01", True),  # no issuewild: issue governs wildcards
        ([issue(CA), issue("x", "futuretag", 128)], False, "http-01", False),
        ([issue(CA), issue("x", "futuretag", 0)], False, "http-01", True),
        ([issue(CA, "Issue")], False, "http-01", True),
        ([issue(f"{CA}; accounturi={ACCOUNT}")], False, "http-01", True),
        (
            [issue(f"{CA}; accounturi=https://acme.example.net/acme/acct/7")],
            False,
            "http-01",
            False,
        ),
        ([issue(f"{CA}; validationmethods=dns-01,tls-alpn-01")], False, "http-01", False),
        ([issue(f"{CA}; validationmethods=dns-01,http-01")], False, "http-01", True),
        ([issue(f"{CA}; validationmethods=dns-01; accounturi={ACCOUNT}")], False, "dns-01", True),
        ([issue(f"{CA}; unknownparam=whatever")], False, "http-01", True),
        ([issue(f"{CA}; accounturi")], False, "http-01", False),  # malformed parameter
        ([issue(f"{CA}; a=1; a=2")], False, "http-01", False),  # repeated parameter
        ([issue("bad domain!")], False, "http-01", False),
    ],
)
def test_evaluate(records: list[CaaRecord], wildcard: bool, method: str, allowed: bool) -> None:
    reason = evaluate(records, [CA], wildcard, ACCOUNT, method)
    assert (reason is None) is allowed, reason


def test_parse_issue_value() -> None:
    parsed = parse_issue_value(
        " Ca.Example.net ; accounturi=https://a/b ;validationmethods=dns-01 "
    )
    assert parsed is not None
    assert parsed.issuer == "ca.example.net"
    assert parsed.parameters == {"accounturi": "https://a/b", "validationmethods": "dns-01"}
    assert parse_issue_value(";") == parse_issue_value("") is not None
    assert parse_issue_value("ca.test; k=v v") is None


def test_refusal_names_the_reason() -> None:
    reason = evaluate([issue("other-ca.test")], [CA], False, ACCOUNT, "http-01")
    assert reason is not None and "other-ca.test" in reason and CA in reason


async def test_record_set_is_found_by_climbing(dns_server: DnsResponder, make_va: MakeVA) -> None:
    dns_server.zone.add("example.test", "CAA", '0 issue "other-ca.test"')
    dns_server.zone.add("www.example.test", "A", "192.0.2.1")
    va = await make_va(caa_identities=(CA,))

    failure = await va.check_caa("a.b.www.example.test", False, ACCOUNT, "http-01")

    assert failure is not None and failure.kind is ErrorKind.CAA
    assert "records at example.test" in failure.detail
    # Every name of the climb is asked at once, from one socket; example.test's set wins
    # over that of test (which is asked too, and has none).
    queried = [n for n, t in dns_server.zone.queries if t == "CAA"]
    assert sorted(queried) == sorted(
        ["a.b.www.example.test", "b.www.example.test", "www.example.test", "example.test", "test"]
    )
    assert len(set(dns_server.zone.udp_sources)) == 1


async def test_failure_below_the_relevant_set_forbids_issuance(
    dns_server: DnsResponder, make_va: MakeVA
) -> None:
    dns_server.zone.add("example.test", "CAA", f'0 issue "{CA}"')
    dns_server.zone.servfail.add("www.example.test")
    va = await make_va(caa_identities=(CA,))

    failure = await va.check_caa("www.example.test", False, ACCOUNT, "http-01")

    assert failure is not None and failure.kind is ErrorKind.DNS
    assert "CAA lookup failed" in failure.detail and "www.example.test" in failure.detail


async def test_failure_above_the_relevant_set_does_not_matter(
    dns_server: DnsResponder, make_va: MakeVA
) -> None:
    dns_server.zone.add("www.example.test", "CAA", f'0 issue "{CA}"')
    dns_server.zone.servfail.add("example.test")
    va = await make_va(caa_identities=(CA,))

    assert await va.check_caa("www.example.test", False, ACCOUNT, "http-01") is None


async def test_closest_record_set_wins(dns_server: DnsResponder, make_va: MakeVA) -> None:
    dns_server.zone.add("example.test", "CAA", '0 issue "other-ca.test"')
    dns_server.zone.add("www.example.test", "CAA", f'0 issue "{CA}"')
    va = await make_va(caa_identities=(CA,))

    assert await va.check_caa("www.example.test", False, ACCOUNT, "http-01") is None


async def test_no_records_anywhere_permits(dns_server: DnsResponder, make_va: MakeVA) -> None:
    va = await make_va(caa_identities=(CA,))
    assert await va.check_caa("nothing.example.test", False, ACCOUNT, "dns-01") is None
    assert ("test", "CAA") in dns_server.zone.queries


async def test_cname_target_record_set_is_used(dns_server: DnsResponder, make_va: MakeVA) -> None:
    dns_server.zone.add("www.example.test", "CNAME", "cdn.provider.test.")
    dns_server.zone.add("cdn.provider.test", "CAA", '0 issue "other-ca.test"')
    va = await make_va(caa_identities=(CA,))

    failure = await va.check_caa("www.example.test", False, ACCOUNT, "http-01")

    assert failure is not None and failure.kind is ErrorKind.CAA


async def test_lookup_failure_refuses(dns_server: DnsResponder, make_va: MakeVA) -> None:
    dns_server.zone.servfail.add("example.test")
    va = await make_va(caa_identities=(CA,))

    failure = await va.check_caa("www.example.test", False, ACCOUNT, "http-01")

    assert failure is not None and failure.kind is ErrorKind.DNS
    assert "CAA lookup failed" in failure.detail


async def test_disabled_without_identities_and_for_ips(
    dns_server: DnsResponder, make_va: MakeVA
) -> None:
    dns_server.zone.add("example.test", "CAA", '0 issue ";"')
    disabled = await make_va()
    enabled = await make_va(caa_identities=(CA,))

    assert await disabled.check_caa("example.test", False, ACCOUNT, "dns-01") is None
    assert await enabled.check_caa("192.0.2.1", False, ACCOUNT, "http-01") is None
    assert await enabled.check_caa("example.test", False, ACCOUNT, "dns-01") is not None


async def test_validate_checks_caa_after_the_challenge(
    dns_server: DnsResponder, make_va: MakeVA
) -> None:
    key_auth = "tok.thumb"
    dns_server.zone.add("_acme-challenge.example.test", "TXT", f'"{txt_digest(key_auth)}"')
    dns_server.zone.add("example.test", "CAA", f'0 issue "{CA}; validationmethods=http-01"')
    va = await make_va(caa_identities=(CA,))

    outcome = await va.validate(ChallengeTask("dns", "example.test", "dns-01", "tok", key_auth))

    assert outcome.failure is not None and outcome.failure.kind is ErrorKind.CAA
    assert "validation methods http-01, not dns-01" in outcome.failure.detail
    assert [r.get("check") for r in outcome.records] == [None, "caa"]


async def test_validate_passes_with_permitting_caa(
    dns_server: DnsResponder, make_va: MakeVA
) -> None:
    key_auth = "tok.thumb"
    dns_server.zone.add("_acme-challenge.example.test", "TXT", f'"{txt_digest(key_auth)}"')
    dns_server.zone.add("example.test", "CAA", f'0 issuewild "{CA}; accounturi={ACCOUNT}"')
    va = await make_va(caa_identities=(CA,))
    wildcard = ChallengeTask(
        "dns", "example.test", "dns-01", "tok", key_auth, ACCOUNT, wildcard=True
    )

    outcome = await va.validate(wildcard)

    assert outcome.valid, outcome.failure


async def test_validate_without_caa_identities_asks_no_caa(
    dns_server: DnsResponder, make_va: MakeVA
) -> None:
    key_auth = "tok.thumb"
    dns_server.zone.add("_acme-challenge.example.test", "TXT", f'"{txt_digest(key_auth)}"')
    dns_server.zone.add("example.test", "CAA", '0 issue ";"')
    va = await make_va()

    outcome = await va.validate(ChallengeTask("dns", "example.test", "dns-01", "tok", key_auth))

    assert outcome.valid, outcome.failure
    assert [r.get("check") for r in outcome.records] == [None]
    assert all(rdtype != "CAA" for _, rdtype in dns_server.zone.queries)
