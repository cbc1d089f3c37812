"""The gateway runs on uvloop while the other tests use asyncio's loop: run each
challenge type once on uvloop, through the loop-specific paths (UDP endpoints,
TCP fallback, TLS with ALPN and SNI, plain TCP)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import uvloop

from gateway.validation import ChallengeTask
from gateway.validation.dns01 import txt_digest
from gateway.validation.engine import ValidationAuthority
from gateway.validation.tlsalpn01 import acme_identifier_value
from tests.validation.conftest import loopback_settings
from tests.validation.dnsserver import DnsResponder
from tests.validation.test_httpfetch import ok, raw_server
from tests.validation.test_tlsalpn01 import dns_san, make_cert, tls_responder

KEY_AUTH = "tok.thumb"


async def scenario(cert: tuple[Path, Path]) -> list[str]:
    dns = DnsResponder()
    await dns.start()
    dns.zone.add("uv.test", "A", "127.0.0.1")
    dns.zone.add("uv.test", "AAAA", "::1")  # nothing listens there: IPv4 fallback
    big = [f'"{"x" * 250}{i}"' for i in range(10)]
    dns.zone.add("_acme-challenge.uv.test", "TXT", *big, f'"{txt_digest(KEY_AUTH)}"')
    failures: list[str] = []
    try:
        async with raw_server(ok(KEY_AUTH.encode())) as http_port, tls_responder(cert) as tls:
            settings = loopback_settings(dns, http01_port=http_port, tlsalpn01_port=tls.port)
            va = ValidationAuthority(dataclasses.replace(settings, per_target_concurrency=5))
            await va.start()
            for challenge in ("http-01", "dns-01", "tls-alpn-01"):
                outcome = await va.validate(
                    ChallengeTask("dns", "uv.test", challenge, "tok", KEY_AUTH)
                )
                if outcome.failure is not None:
                    failures.append(f"{challenge}: {outcome.failure}")
            await va.aclose()
    finally:
        await dns.close()
    return failures


def test_all_challenges_on_uvloop(tmp_path: Path) -> None:
    cert = make_cert(tmp_path, [dns_san("uv.test")], acme_identifier_value(KEY_AUTH))
    assert uvloop.run(scenario(cert)) == []
