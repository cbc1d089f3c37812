"""The loopback challenge responders: HTTP-01 tokens and DNS TXT/A answers."""

from __future__ import annotations

import socket

import aiohttp
import dns.asyncquery
import dns.message
import dns.rdatatype

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
