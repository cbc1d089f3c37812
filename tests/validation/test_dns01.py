"""DNS-01 against the loopback DNS responder: matches, CNAMEs, big and broken answers."""

from __future__ import annotations

import time

import pytest

from gateway.errors import ErrorKind
from gateway.validation import ChallengeTask
from gateway.validation.dns01 import txt_digest
from tests.validation.conftest import MakeVA
from tests.validation.dnsserver import DnsResponder
from tests.validation.test_http01 import assert_failed

KEY_AUTH = "token-xyz.thumbprint-abc"
DIGEST = txt_digest(KEY_AUTH)
NAME = "_acme-challenge.example.test"


def task(name: str = "example.test", kind: str = "dns", wildcard: bool = False) -> ChallengeTask:
    """A dns-01 task for ``name``."""
    return ChallengeTask(kind, name, "dns-01", "token-xyz", KEY_AUTH, wildcard=wildcard)


def test_digest_is_unpadded_base64url_of_sha256() -> None:
    # RFC 8555 §8.4 example-free check: SHA-256("") is well known.
    assert txt_digest("") == "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
    assert "=" not in DIGEST and len(DIGEST) == 43


@pytest.mark.parametrize("wildcard", [False, True])
async def test_matching_record_among_several_is_accepted(
    dns_server: DnsResponder, make_va: MakeVA, wildcard: bool
) -> None:
    dns_server.zone.add(NAME, "TXT", '"unrelated"', f'"{DIGEST}"', '"v=spf1 -all"')
    va = await make_va()

    outcome = await va.validate(task(wildcard=wildcard))

    assert outcome.valid, outcome.failure
    assert outcome.records[0]["txtName"] == NAME
    assert (NAME, "TXT") in dns_server.zone.queries


async def test_record_split_into_strings_is_joined(
    dns_server: DnsResponder, make_va: MakeVA
) -> None:
    dns_server.zone.add(NAME, "TXT", f'"{DIGEST[:20]}" "{DIGEST[20:]}"')
    va = await make_va()
    assert (await va.validate(task())).valid


async def test_wrong_value_is_an_incorrect_response(
    dns_server: DnsResponder, make_va: MakeVA
) -> None:
    dns_server.zone.add(NAME, "TXT", '"stale-value"')
    va = await make_va(attempts=3)

    outcome = await va.validate(task())

    expected = f"expected {DIGEST!r}, found 'stale-value'"
    assert_failed(outcome, ErrorKind.INCORRECT_RESPONSE, NAME, expected)
    assert len(outcome.records) == 1  # a wrong answer is not retried


@pytest.mark.parametrize("exists", [True, False])
async def test_missing_record_is_unauthorized(
    dns_server: DnsResponder, make_va: MakeVA, exists: bool
) -> None:
    if exists:
        dns_server.zone.add(NAME, "A", "192.0.2.1")
    va = await make_va(attempts=3)

    outcome = await va.validate(task())

    assert_failed(outcome, ErrorKind.UNAUTHORIZED, "no TXT record found", NAME)
    assert len(outcome.records) == 1


async def test_bare_cname_is_followed(dns_server: DnsResponder, make_va: MakeVA) -> None:
    dns_server.zone.add(NAME, "CNAME", "delegated.dns-provider.test.")
    dns_server.zone.add("delegated.dns-provider.test", "CNAME", "final.dns-provider.test.")
    dns_server.zone.add("final.dns-provider.test", "TXT", f'"{DIGEST}"')
    va = await make_va()

    outcome = await va.validate(task())

    assert outcome.valid, outcome.failure
    assert ("final.dns-provider.test", "TXT") in dns_server.zone.queries


async def test_cname_loop_is_a_dns_failure(dns_server: DnsResponder, make_va: MakeVA) -> None:
    dns_server.zone.add(NAME, "CNAME", "loop.test.")
    dns_server.zone.add("loop.test", "CNAME", f"{NAME}.")
    va = await make_va()

    outcome = await va.validate(task())

    assert_failed(outcome, ErrorKind.DNS, "CNAME chain")


async def test_huge_answer_arrives_over_tcp(dns_server: DnsResponder, make_va: MakeVA) -> None:
    filler = [f'"{"x" * 250}" "{i:04d}"' for i in range(60)]
    dns_server.zone.add(NAME, "TXT", *filler, f'"{DIGEST}"')
    va = await make_va()

    outcome = await va.validate(task())

    assert outcome.valid, outcome.failure
    assert outcome.records[0]["txtRecords"] == 61


async def test_huge_wrong_answer_is_reported_briefly(
    dns_server: DnsResponder, make_va: MakeVA
) -> None:
    dns_server.zone.add(NAME, "TXT", *[f'"{"y" * 250}{i}"' for i in range(40)])
    va = await make_va()

    outcome = await va.validate(task())

    assert_failed(outcome, ErrorKind.INCORRECT_RESPONSE, "and 37 more")
    assert outcome.failure is not None and len(outcome.failure.detail) < 400


async def test_binary_txt_value_is_handled(dns_server: DnsResponder, make_va: MakeVA) -> None:
    dns_server.zone.add(NAME, "TXT", '"\\255\\000\\010abc"')
    va = await make_va()

    outcome = await va.validate(task())

    assert_failed(outcome, ErrorKind.INCORRECT_RESPONSE)


@pytest.mark.parametrize("mode", ["servfail", "garbage"])
async def test_broken_server_is_a_retried_dns_failure(
    dns_server: DnsResponder, make_va: MakeVA, mode: str
) -> None:
    getattr(dns_server.zone, mode).add(NAME)
    naps: list[float] = []

    async def sleep(seconds: float) -> None:
        naps.append(seconds)

    va = await make_va(
        attempts=2, retry_backoff_seconds=0.25, sleep=sleep, attempt_timeout_seconds=0.3
    )

    outcome = await va.validate(task())

    assert_failed(outcome, ErrorKind.DNS, NAME, "after 2 attempts")
    assert [r["attempt"] for r in outcome.records] == [1, 2]
    assert naps == [0.25]


async def test_silent_server_times_out_within_the_attempt(
    dns_server: DnsResponder, make_va: MakeVA
) -> None:
    dns_server.zone.silent.add(NAME)
    va = await make_va(attempt_timeout_seconds=0.4)

    started = time.monotonic()
    outcome = await va.validate(task())

    assert time.monotonic() - started < 1.5
    assert_failed(outcome, ErrorKind.DNS, "timed out")


@pytest.mark.parametrize("ip", ["192.0.2.7", "2001:db8::7"])
async def test_ip_identifier_cannot_use_dns01(make_va: MakeVA, ip: str) -> None:
    va = await make_va()
    outcome = await va.validate(task(ip, "ip"))
    assert_failed(outcome, ErrorKind.MALFORMED, "dns-01 cannot validate ip identifier", "RFC 8738")


async def test_next_resolver_is_asked_when_the_first_fails(
    dns_server: DnsResponder, make_va: MakeVA
) -> None:
    second = DnsResponder()
    await second.start()
    dns_server.zone.servfail.add(NAME)
    second.zone.add(NAME, "TXT", f'"{DIGEST}"')
    try:
        va = await make_va(resolvers=(("127.0.0.1", dns_server.port), ("127.0.0.1", second.port)))
        outcome = await va.validate(task())
    finally:
        await second.close()
    assert outcome.valid, outcome.failure


async def test_answer_with_wrong_id_is_not_believed(
    dns_server: DnsResponder, make_va: MakeVA
) -> None:
    dns_server.zone.add(NAME, "TXT", f'"{DIGEST}"')
    dns_server.zone.wrong_id.add(NAME)
    va = await make_va()

    outcome = await va.validate(task())

    assert_failed(outcome, ErrorKind.DNS, "does not match the question")


async def test_lost_query_is_asked_again(dns_server: DnsResponder, make_va: MakeVA) -> None:
    dns_server.zone.add(NAME, "TXT", f'"{DIGEST}"')
    dns_server.zone.drop_once.add(NAME)
    va = await make_va(attempt_timeout_seconds=1.2)  # 0.6 s for each try (one per pass)

    outcome = await va.validate(task())

    assert outcome.valid, outcome.failure
    assert dns_server.zone.queries.count((NAME, "TXT")) == 2
