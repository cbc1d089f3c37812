"""EST enrolls only what the requester may have (RFC 7030 §3.7): each identity bound to names.

The escalation these tests close: a certificate obtained over ACME for one name
(it carries clientAuth by default) used as the TLS client certificate of an EST
``simpleenroll`` for somebody else's name.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509

from gateway.model.clock import FakeClock
from tests.acme.flow import issue
from tests.acme.support import FakeValidator
from tests.acmeclient import AcmeClient
from tests.est.support import (
    ALICE,
    DER,
    PASSWORD,
    Gateway,
    Manufacturer,
    b64,
    certs_of,
    ec_key,
    est_section,
    make_csr,
    request,
    running_gateway,
    write_pair,
)

CAROL = ("carol", PASSWORD)


async def _acme_certificate(gw: Gateway, tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` from an ordinary ACME order on the same gateway."""
    ctx = ssl.create_default_context(cafile=str(gw.server_cert))
    base = gw.url.removesuffix("/.well-known/est")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
        c = AcmeClient(session, f"{base}/acme/directory")
        await c.start()
        await c.register()
        _, done, key = await issue(c, [name])
        _, pem = await c.post(done["certificate"])
    leaf = x509.load_pem_x509_certificates(pem.encode())[0]
    return write_pair(tmp_path / name, leaf.public_bytes(DER), key)


async def _unauthorized_rows(gw: Gateway) -> list[dict[str, Any]]:
    rows = await gw.core.est.store.audit_rows(0, 1000)  # type: ignore[attr-defined]
    return [r for r in rows if r["event"] == "unauthorized"]


@pytest.fixture
async def acme_gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    """ACME (validations always pass) and EST on one listener, as shipped."""
    est = est_section(Manufacturer(tmp_path).ca_file)
    async with running_gateway(tmp_path, est, validator=FakeValidator()) as gateway:
        yield gateway


async def test_acme_certificate_cannot_enroll_another_name(acme_gw: Gateway,
                                                            tmp_path: Path) -> None:
    pair = await _acme_certificate(acme_gw, tmp_path, "attacker.example.net")
    victim = b64(make_csr(ec_key(), cn="www.victim.example.net"))
    for label in ("", "/certonly", "/issuing", "/devices"):
        status, _, body = await request(acme_gw, "POST", f"{label}/simpleenroll", victim,
                                        cert=pair)
        assert status == 403 and b"issued through ACME" in body, (label, body)
    # Not even for its own name, and not as a renewal.
    own = b64(make_csr(ec_key(), cn="attacker.example.net", org=None))
    status, _, body = await request(acme_gw, "POST", "/issuing/simpleenroll", own, cert=pair)
    assert status == 403 and b"issued through ACME" in body
    status, _, body = await request(acme_gw, "POST", "/simplereenroll", own, cert=pair)
    assert status == 403 and b"acme_certs_authenticate_est" in body
    refused = await _unauthorized_rows(acme_gw)
    assert len(refused) == 6 and all(r["actor"].startswith("est:cert:") for r in refused)


async def test_profile_may_let_acme_certificates_enroll_their_own_name(tmp_path: Path) -> None:
    est = est_section(Manufacturer(tmp_path).ca_file)
    async with running_gateway(tmp_path, est, validator=FakeValidator(),
                               profiles={"default": {"acme_certs_authenticate_est": True}}
                               ) as gw:
        pair = await _acme_certificate(gw, tmp_path, "box.example.net")
        own = b64(make_csr(ec_key(), cn="box.example.net"))
        status, _, body = await request(gw, "POST", "/issuing/simpleenroll", own, cert=pair)
        assert status == 200, body
        other = b64(make_csr(ec_key(), cn="www.victim.example.net"))
        status, _, body = await request(gw, "POST", "/issuing/simpleenroll", other, cert=pair)
        assert status == 403
        assert b"may not request www.victim.example.net; it may request box.example.net" in body
        # A label that does not trust its issuing CA still refuses it.
        status, _, body = await request(gw, "POST", "/certonly/simpleenroll", own, cert=pair)
        assert status == 403 and b"trusts for enrollment (client_ca_files)" in body


async def test_est_certificate_enrolls_only_where_the_issuing_ca_is_trusted(
        gw: Gateway, tmp_path: Path) -> None:
    key = ec_key()
    _, _, body = await request(gw, "POST", "/basic/simpleenroll", b64(make_csr(key)), ALICE)
    pair = write_pair(tmp_path / "issued", certs_of(body)[0].public_bytes(DER), key)
    again = b64(make_csr(ec_key(), cn="router01.example.net"))
    status, _, body = await request(gw, "POST", "/simpleenroll", again, cert=pair)
    assert status == 403
    assert b"not issued by a CA that label 'default' trusts for enrollment" in body
    status, _, body = await request(gw, "POST", "/issuing/simpleenroll", again, cert=pair)
    assert status == 200, body
    other = b64(make_csr(ec_key(), cn="router02.example.net"))
    status, _, body = await request(gw, "POST", "/issuing/simpleenroll", other, cert=pair)
    assert status == 403 and b"may not request router02.example.net" in body


@pytest.mark.parametrize("auth,cn,status,reason", [
    (CAROL, "r1.branch.example.net", 200, ""),
    (CAROL, "hq.example.net", 403,
     "est:user:carol on label 'oneline' may not request hq.example.net; it may request "
     "*.branch.example.net"),
    (("bob", "bobs pw"), "r1.branch.example.net", 403,
     "est:user:bob on label 'oneline' is bound to no names"),
    (ALICE, "hq.example.net", 200, ""),
])
async def test_basic_users_are_bound_to_their_names(gw: Gateway, auth: tuple[str, str], cn: str,
                                                    status: int, reason: str) -> None:
    got, _, body = await request(gw, "POST", "/oneline/simpleenroll",
                                 b64(make_csr(ec_key(), cn=cn)), auth)
    assert got == status, body
    if reason:
        assert body.decode().startswith(reason)
        rows = await _unauthorized_rows(gw)
        assert rows[-1]["actor"] == f"est:user:{auth[0]}"
        assert rows[-1]["detail"].startswith(reason)


@pytest.mark.parametrize("serial,cn,status", [
    ("SN-0042", "sn-0042.devices.example.net", 200),
    ("SN-0042", "sn-0043.devices.example.net", 403),
    ("SN-0042", "router01.example.net", 403),
    (None, "sn-0001.devices.example.net", 403),  # no serialNumber: bound to nothing
    ("*", "x.devices.example.net", 403),          # a glob in the subject widens nothing
])
async def test_device_certificate_is_bound_to_its_serial_number(
        gw: Gateway, manufacturer: Manufacturer, serial: str | None, cn: str,
        status: int) -> None:
    device = manufacturer.device(serial_number=serial)
    got, _, body = await request(gw, "POST", "/devices/simpleenroll",
                                 b64(make_csr(ec_key(), cn=cn, org=None)), cert=device)
    assert got == status, body
    if status == 403:
        assert b"on label 'devices'" in body and (await _unauthorized_rows(gw))


async def test_renewal_only_on_the_issuing_profile_and_while_valid(tmp_path: Path) -> None:
    clock = FakeClock(datetime.now(UTC))
    est = est_section(Manufacturer(tmp_path).ca_file)
    est["labels"]["held-certs"] = {"profile": "held", "auth": "cert"}
    async with running_gateway(tmp_path, est, clock=clock) as gw:
        key = ec_key()
        _, _, body = await request(gw, "POST", "/basic/simpleenroll", b64(make_csr(key)), ALICE)
        pair = write_pair(tmp_path / "issued", certs_of(body)[0].public_bytes(DER), key)
        same = b64(make_csr(key))
        status, _, body = await request(gw, "POST", "/held-certs/simplereenroll", same,
                                        cert=pair)
        assert status == 403 and b"issued under profile 'routers'" in body
        status, _, body = await request(gw, "POST", "/simplereenroll", same, cert=pair)
        assert status == 200, body
        clock.advance(timedelta(days=31).total_seconds())  # the routers profile issues for 30 days
        status, _, body = await request(gw, "POST", "/simplereenroll", same, cert=pair)
        assert status == 403 and b"has expired" in body
