"""The loopback challenge responders: HTTP-01 tokens and DNS TXT/A answers."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from loadtest.dns_thread import ThreadedDnsResponder
from loadtest.responders import DnsResponder, Http01Responder
from tests.loadtest.conftest import free_port


async def test_http01_serves_published_tokens_only() -> None:
    responder = Http01Responder(free_port())
    await responder.start()
    try:
        responder.tokens["tok"] = "tok.thumb"
        base = f"http://127.0.0.1:{responder.port}/.well-known/acme-challenge"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/tok") as resp:
                assert (resp.status, await resp.text()) == (200, "tok.thumb")
            async with http.get(f"{base}/other") as resp:
                assert resp.status == 404
    finally:
        await responder.stop()
    assert responder.hits == {"found": 1, "missing": 1}


async def raw_exchange(port: int, *pieces: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for piece in pieces:
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.01)
    answer = await asyncio.wait_for(reader.read(), 2)  # the responder closes after one answer
    writer.close()
    return answer


async def test_http01_answers_split_heads_and_refuses_the_rest() -> None:
    responder = Http01Responder(free_port())
    await responder.start()
    try:
        responder.tokens["tok"] = "tok.thumb"
        path = b"/.well-known/acme-challenge/"
        split = await raw_exchange(
            responder.port, b"GET " + path + b"tok HT", b"TP/1.1\r\nHost: x\r\n\r\n"
        )
        post = await raw_exchange(responder.port, b"POST " + path + b"tok HTTP/1.1\r\n\r\n")
        nested = await raw_exchange(responder.port, b"GET " + path + b"a/tok HTTP/1.1\r\n\r\n")
        garbage = await raw_exchange(responder.port, b"hello\r\n\r\n")
        huge = await raw_exchange(responder.port, b"GET /" + b"x" * 9000)
    finally:
        await responder.stop()
    head, body = split.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 9" in head
    assert body == b"tok.thumb"
    assert post.startswith(b"HTTP/1.1 405 ")
    assert nested.startswith(b"HTTP/1.1 404 ")
    assert garbage.startswith(b"HTTP/1.1 400 ")
    assert huge.startswith(b"HTTP/1.1 431 ")


async def ask(port: int, name: str, rdtype: str) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    return await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=2)


async def test_dns_answers_txt_and_loopback_a() -> None:
    responder = DnsResponder(free_port(socket.SOCK_DGRAM))
    await responder.start()
    try:
        responder.publish("*.Host.Example", "digest-1")
        responder.publish("host.example", "digest-2")
        txt = await ask(responder.port, "_acme-challenge.host.example.", "TXT")
        a = await ask(responder.port, "www.host.example.", "A")
        aaaa = await ask(responder.port, "www.host.example.", "AAAA")
        responder.withdraw("host.example", "digest-2")
        left = await ask(responder.port, "_acme-challenge.host.example.", "TXT")
        responder.withdraw("*.host.example", "digest-1")
        gone = await ask(responder.port, "_acme-challenge.host.example.", "TXT")
    finally:
        await responder.stop()
    values = sorted(s.decode() for rr in txt.answer[0] for s in rr.strings)
    assert values == ["digest-1", "digest-2"]
    assert [rr.address for rr in a.answer[0]] == ["127.0.0.1"]
    assert [s.decode() for rr in left.answer[0] for s in rr.strings] == ["digest-1"]
    assert aaaa.answer == [] and gone.answer == []


async def test_dns_answer_echoes_the_question_and_copies_rd() -> None:
    responder = DnsResponder(free_port(socket.SOCK_DGRAM))
    query = dns.message.make_query("WwW.Host.EXAMPLE.", "A", use_edns=0)
    query.flags &= ~dns.flags.RD
    reply = dns.message.from_wire(responder.answer(query.to_wire()) or b"")
    assert reply.id == query.id and reply.question == query.question
    assert reply.question[0].name.to_text() == "WwW.Host.EXAMPLE."  # case kept (0x20)
    assert reply.flags & dns.flags.QR and reply.flags & dns.flags.AA
    assert not reply.flags & dns.flags.RD
    assert reply.rcode() == dns.rcode.NOERROR
    assert [rr.address for rr in reply.answer[0]] == ["127.0.0.1"]
    assert reply.answer[0].name == query.question[0].name


async def test_dns_splits_long_txt_values_into_character_strings() -> None:
    responder = DnsResponder(free_port(socket.SOCK_DGRAM))
    responder.publish("long.example", "x" * 300)
    query = dns.message.make_query("_acme-challenge.long.example.", "TXT")
    reply = dns.message.from_wire(responder.answer(query.to_wire()) or b"")
    assert [len(s) for s in reply.answer[0][0].strings] == [255, 45]


async def test_dns_drops_what_is_not_a_plain_query() -> None:
    responder = DnsResponder(free_port(socket.SOCK_DGRAM))
    query = dns.message.make_query("a.example.", "A")
    response = dns.message.make_response(query)
    wire = query.to_wire()
    chaos = dns.message.make_query("a.example.", "TXT", rdclass="CH").to_wire()
    pointer = wire[:12] + b"\xc0\x0c" + wire[-4:]
    for garbage in (b"", b"\x00" * 11, wire[:20], response.to_wire(), chaos, pointer):
        assert responder.answer(garbage) is None
    assert responder.queries == {}
    assert responder.answer(wire) is not None


async def test_http01_delay_holds_each_answer() -> None:
    responder = Http01Responder(free_port(), delay=0.3)
    await responder.start()
    try:
        responder.tokens["tok"] = "tok.thumb"
        loop = asyncio.get_running_loop()
        began = loop.time()
        path = b"/.well-known/acme-challenge/tok"
        answers = await asyncio.gather(
            *(raw_exchange(responder.port, b"GET " + path + b" HTTP/1.1\r\n\r\n") for _ in range(3))
        )
        elapsed = loop.time() - began
    finally:
        await responder.stop()
    assert all(a.endswith(b"\r\n\r\ntok.thumb") for a in answers)
    assert 0.3 <= elapsed < 2.0  # answered in parallel, each after the delay


async def test_threaded_dns_answers_while_the_loop_is_blocked() -> None:
    responder = ThreadedDnsResponder(free_port(socket.SOCK_DGRAM))
    await responder.start()
    try:
        responder.publish("host.example", "digest")
        query = dns.message.make_query("_acme-challenge.host.example.", "TXT")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2)
            sock.sendto(query.to_wire(), ("127.0.0.1", responder.port))
            # Blocking here blocks the event loop: only the responder's thread can answer.
            reply = dns.message.from_wire(sock.recv(512))
    finally:
        await responder.stop()
    assert [s.decode() for rr in reply.answer[0] for s in rr.strings] == ["digest"]
    assert responder.queries["TXT"] == 1
