"""TLS-ALPN-01 against loopback TLS responders presenting crafted certificates."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.errors import ErrorKind
from gateway.validation import ChallengeTask
from gateway.validation.engine import ValidationAuthority
from gateway.validation.settings import ValidationSettings
from gateway.validation.targets import reverse_name
from gateway.validation.tlsalpn01 import ACME_TLS_ALPN, ID_PE_ACME_IDENTIFIER, acme_identifier_value
from tests.validation.conftest import MakeVA, closed_port
from tests.validation.dnsserver import DnsResponder
from tests.validation.test_http01 import assert_failed
from tests.validation.tlspeer import tls_peer

KEY_AUTH = "token-abc.thumbprint-def"
NAME = "alpn.test"


def task(name: str = NAME, kind: str = "dns") -> ChallengeTask:
    """A tls-alpn-01 task for ``name``."""
    return ChallengeTask(kind, name, "tls-alpn-01", "token-abc", KEY_AUTH)


def dns_san(name: str = NAME) -> x509.GeneralName:
    return x509.DNSName(name)


def ip_san(ip: str) -> x509.GeneralName:
    return x509.IPAddress(ipaddress.ip_address(ip))


def make_cert(
    tmp_path: Path,
    sans: list[x509.GeneralName],
    acme_value: bytes | None = None,
    critical: bool = True,
) -> tuple[Path, Path]:
    """A self-signed certificate with ``sans`` and (unless None) an acmeIdentifier extension."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme-tls/1 test")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme-tls/1 test")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if acme_value is not None:
        ext = x509.UnrecognizedExtension(ID_PE_ACME_IDENTIFIER, acme_value)
        builder = builder.add_extension(ext, critical=critical)
    cert = builder.sign(key, hashes.SHA256())
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class TlsResponder:
    """A TLS listener that records the SNI it was asked for."""

    port: int = 0
    server_names: list[str | None] = field(default_factory=list)


@contextlib.asynccontextmanager
async def tls_responder(
    cert: tuple[Path, Path], alpn: bool = True, host: str = "127.0.0.1"
) -> AsyncIterator[TlsResponder]:
    responder = TlsResponder()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    if alpn:
        context.set_alpn_protocols([ACME_TLS_ALPN])

    def on_sni(obj: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        responder.server_names.append(name)

    context.sni_callback = on_sni  # type: ignore[assignment]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await reader.read()
        writer.close()

    server = await asyncio.start_server(serve, host, 0, ssl=context)
    responder.port = server.sockets[0].getsockname()[1]
    try:
        yield responder
    finally:
        server.close()


GOOD = acme_identifier_value(KEY_AUTH)


async def test_valid_certificate_is_accepted(
    tmp_path: Path, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    dns_server.zone.add(NAME, "A", "127.0.0.1")
    async with tls_responder(make_cert(tmp_path, [dns_san()], GOOD)) as responder:
        va = await make_va(tlsalpn01_port=responder.port)
        outcome = await va.validate(task())

    assert outcome.valid, outcome.failure
    assert responder.server_names == [NAME]
    (record,) = outcome.records
    assert record["addressUsed"] == "127.0.0.1" and record["serverName"] == NAME


@pytest.mark.parametrize(
    ("sans", "value", "critical", "words"),
    [
        (
            [dns_san()],
            acme_identifier_value("other.keyauth"),
            True,
            (f"acmeIdentifier of {acme_identifier_value('other.keyauth').hex()}", GOOD.hex()),
        ),
        ([dns_san()], GOOD, False, ("not marked critical",)),
        ([dns_san()], None, True, ("no id-pe-acmeIdentifier", "1.3.6.1.5.5.7.1.31")),
        (
            [dns_san(), dns_san("extra.test")],
            GOOD,
            True,
            ("has 2 subjectAltNames (dNSName alpn.test, dNSName extra.test)",
             "expected exactly one, dNSName alpn.test"),
        ),
        (
            [dns_san("other.test")],
            GOOD,
            True,
            ("subjectAltName dNSName other.test: wrong value, expected dNSName alpn.test",),
        ),
        (
            [ip_san("127.0.0.1")],
            GOOD,
            True,
            ("subjectAltName iPAddress 127.0.0.1: wrong value, expected dNSName alpn.test",),
        ),
        ([], GOOD, True, ("no subjectAltName extension; expected dNSName alpn.test",)),
        ([dns_san()], GOOD[2:], True, ("bare SHA-256 digest", "DER OCTET STRING", GOOD.hex())),
    ],
)
async def test_wrong_certificates_are_incorrect_responses(
    tmp_path: Path,
    dns_server: DnsResponder,
    make_va: MakeVA,
    sans: list[x509.GeneralName],
    value: bytes | None,
    critical: bool,
    words: tuple[str, ...],
) -> None:
    dns_server.zone.add(NAME, "A", "127.0.0.1")
    async with tls_responder(make_cert(tmp_path, sans, value, critical)) as responder:
        va = await make_va(tlsalpn01_port=responder.port, attempts=3)
        outcome = await va.validate(task())

    assert_failed(outcome, ErrorKind.INCORRECT_RESPONSE, *words)
    assert len(outcome.records) == 1


async def test_name_is_matched_case_insensitively(
    tmp_path: Path, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    dns_server.zone.add(NAME, "A", "127.0.0.1")
    async with tls_responder(make_cert(tmp_path, [dns_san("ALPN.Test")], GOOD)) as responder:
        va = await make_va(tlsalpn01_port=responder.port)
        assert (await va.validate(task())).valid


async def test_server_without_acme_alpn_is_a_tls_failure(
    tmp_path: Path, dns_server: DnsResponder, make_va: MakeVA
) -> None:
    dns_server.zone.add(NAME, "A", "127.0.0.1")
    async with tls_responder(make_cert(tmp_path, [dns_san()], GOOD), alpn=False) as responder:
        va = await make_va(tlsalpn01_port=responder.port)
        outcome = await va.validate(task())

    assert_failed(outcome, ErrorKind.TLS, "did not negotiate ALPN acme-tls/1")


async def test_plain_tcp_listener_is_a_tls_failure(
    dns_server: DnsResponder, make_va: MakeVA
) -> None:
    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(plain, "127.0.0.1", 0)
    dns_server.zone.add(NAME, "A", "127.0.0.1")
    va = await make_va(tlsalpn01_port=server.sockets[0].getsockname()[1])

    outcome = await va.validate(task())

    server.close()
    assert outcome.failure is not None
    assert outcome.failure.kind in (ErrorKind.TLS, ErrorKind.CONNECTION), outcome.failure


@pytest.mark.parametrize(
    ("ip", "host", "sni"),
    [
        ("127.0.0.1", "127.0.0.1", "1.0.0.127.in-addr.arpa"),
        ("::1", "::1", "1." + "0." * 31 + "ip6.arpa"),
    ],
)
async def test_ip_identifier_uses_reverse_name_and_ip_san(
    tmp_path: Path, make_va: MakeVA, ip: str, host: str, sni: str
) -> None:
    async with tls_responder(make_cert(tmp_path, [ip_san(ip)], GOOD), host=host) as responder:
        va = await make_va(tlsalpn01_port=responder.port)
        outcome = await va.validate(task(ip, "ip"))

    assert outcome.valid, outcome.failure
    assert responder.server_names == [sni]
    assert reverse_name(ip) == sni


async def test_ip_identifier_rejects_dns_san(tmp_path: Path, make_va: MakeVA) -> None:
    async with tls_responder(make_cert(tmp_path, [dns_san("127.0.0.1")], GOOD)) as responder:
        va = await make_va(tlsalpn01_port=responder.port)
        outcome = await va.validate(task("127.0.0.1", "ip"))

    # The value is right, the type is not: the message must say so, not repeat the value.
    assert_failed(
        outcome,
        ErrorKind.INCORRECT_RESPONSE,
        "subjectAltName dNSName 127.0.0.1: wrong type, expected iPAddress 127.0.0.1",
    )


async def validate_ip_once(cert: tuple[Path, Path], port: int) -> bool:
    """One tls-alpn-01 validation of 127.0.0.1 against ``port`` on the running loop."""
    settings = ValidationSettings(allow_loopback=True, tlsalpn01_port=port, attempts=1,
                                  attempt_timeout_seconds=3.0)
    va = ValidationAuthority(settings)
    await va.start()
    try:
        return (await va.validate(task("127.0.0.1", "ip"))).valid
    finally:
        await va.aclose()


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_connection_ends_with_close_notify(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, bool]], bool]
) -> None:
    """The responder sees a finished handshake and a TLS close, not an EOF (uvloop dropped)."""
    cert = make_cert(tmp_path, [ip_san("127.0.0.1")], GOOD)
    with tls_peer(cert, [ACME_TLS_ALPN]) as peer:
        assert run(validate_ip_once(cert, peer.port))
        assert peer.ending() == "close_notify"


async def test_refused_connection_is_a_connection_failure(
    dns_server: DnsResponder, make_va: MakeVA
) -> None:
    port = await closed_port()
    dns_server.zone.add(NAME, "A", "127.0.0.1")
    va = await make_va(tlsalpn01_port=port)

    outcome = await va.validate(task())

    assert_failed(outcome, ErrorKind.CONNECTION, "cannot connect")


async def test_silent_listener_times_out(dns_server: DnsResponder, make_va: MakeVA) -> None:
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    dns_server.zone.add(NAME, "A", "127.0.0.1")
    va = await make_va(
        tlsalpn01_port=server.sockets[0].getsockname()[1], attempt_timeout_seconds=0.3
    )

    outcome = await va.validate(task())

    release.set()
    server.close()
    assert_failed(outcome, ErrorKind.CONNECTION, "timed out after 0.3 s")


async def test_blocked_ip_identifier_is_rejected(make_va: MakeVA) -> None:
    va = await make_va(allow_loopback=False)
    outcome = await va.validate(task("127.0.0.1", "ip"))
    assert_failed(outcome, ErrorKind.REJECTED_IDENTIFIER, "blocked network")
