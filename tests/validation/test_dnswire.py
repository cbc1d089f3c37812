"""The DNS stub: questions asked together on one socket, retries per question and per server."""

from __future__ import annotations

import dns.rcode
import pytest

from gateway.validation.attempt import ChallengeError
from gateway.validation.dnsmessage import TYPE_A, TYPE_AAAA, Answer, name_wire, question
from gateway.validation.dnswire import StubResolver
from tests.validation.dnsserver import DnsResponder

NAME = "both.test"


def pair(name: str = NAME) -> list[bytes]:
    return [question(name_wire(name), TYPE_AAAA), question(name_wire(name), TYPE_A)]


def stub(*servers: DnsResponder, try_seconds: float = 0.3) -> StubResolver:
    return StubResolver([("127.0.0.1", s.port) for s in servers], try_seconds=try_seconds)


async def test_questions_go_out_together_and_answers_keep_their_order(
    dns_server: DnsResponder,
) -> None:
    dns_server.zone.add(NAME, "AAAA", "2001:db8::1")
    dns_server.zone.add(NAME, "A", "192.0.2.1")

    six, four = await stub(dns_server).query_many(pair())

    assert isinstance(six, Answer) and [r.rdtype for r in six.records] == [TYPE_AAAA]
    assert isinstance(four, Answer) and [r.rdtype for r in four.records] == [TYPE_A]
    assert sorted(dns_server.zone.queries) == [(NAME, "A"), (NAME, "AAAA")]
    first, second = dns_server.zone.udp_sources
    assert first == second  # one socket, so one random source port for both


async def test_only_the_lost_question_is_asked_again(dns_server: DnsResponder) -> None:
    dns_server.zone.add(NAME, "A", "192.0.2.1")
    dns_server.zone.drop_once.add(NAME)  # the first of the two queries to arrive is lost

    answers = await stub(dns_server).query_many(pair())

    assert all(isinstance(a, Answer) for a in answers)
    assert len(dns_server.zone.queries) == 3
    lost = dns_server.zone.queries[0]
    assert dns_server.zone.queries.count(lost) == 2


async def test_next_server_is_asked_what_the_first_could_not_answer(
    dns_server: DnsResponder,
) -> None:
    second = DnsResponder()
    await second.start()
    try:
        dns_server.zone.servfail.add(NAME)
        second.zone.add(NAME, "AAAA", "2001:db8::1")

        six, four = await stub(dns_server, second).query_many(pair())
    finally:
        await second.close()

    assert isinstance(six, Answer) and len(six.records) == 1
    assert isinstance(four, Answer) and four.rcode == dns.rcode.NOERROR and not four.records


@pytest.mark.parametrize("mode", ["servfail", "garbage", "wrong_id", "silent"])
async def test_each_question_fails_with_the_reason(dns_server: DnsResponder, mode: str) -> None:
    getattr(dns_server.zone, mode).add(NAME)
    reason = {
        "servfail": "answered SERVFAIL",
        "garbage": "malformed answer",
        "wrong_id": "does not match the question",
        "silent": "timed out",
    }[mode]

    answers = await stub(dns_server, try_seconds=0.1).query_many(pair())

    for answer in answers:
        assert isinstance(answer, ChallengeError) and answer.retriable
        assert reason in answer.detail and f"127.0.0.1:{dns_server.port}" in answer.detail


async def test_query_raises_what_query_many_reports(dns_server: DnsResponder) -> None:
    dns_server.zone.servfail.add(NAME)
    with pytest.raises(ChallengeError, match="answered SERVFAIL"):
        await stub(dns_server).query(pair()[1])
