"""The connector contract: every CA connector behaves the same to the issuance core.

Each harness starts one connector against its simulator (or, for the local CA,
the real thing) and offers the controls a test needs: how to make the CA defer
a request and approve it later, and how to take the CA down. A harness that
cannot do something says so and the case is skipped for it, with the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from connectors.base import (
    AlreadyRevoked,
    CAUnavailable,
    Connector,
    Issued,
    Pending,
    RevocationReason,
    RevocationUnsupported,
)
from tests.connectors.simulators import certsrv, ejbca, request
from tests.fakes.pki import make_csr


@dataclass
class Harness:
    """A started connector and the knobs of the CA behind it."""

    connector: Connector
    params: dict[str, str]
    defer: Callable[[], None] | None = None  # make the next requests wait for approval
    approve: Callable[[str], None] | None = None  # approve the request behind a Pending ref
    take_down: Callable[[], None] | None = None


@asynccontextmanager
async def _certsrv(tmp: Path, auth: str) -> AsyncIterator[Harness]:
    async with certsrv(tmp, auth=auth) as (sim, conn):

        def defer() -> None:
            sim.mode = "pending"

        def down() -> None:
            sim.mode = "down"

        yield Harness(
            conn, {"template": "WebServer"}, defer, lambda ref: sim.approve(int(ref)), down
        )


@asynccontextmanager
async def _ejbca(tmp: Path) -> AsyncIterator[Harness]:
    async with ejbca(tmp) as (sim, conn):

        def defer() -> None:
            sim.mode = "approval"

        def approve(ref: str) -> None:
            for approval in sim.approvals.values():
                if approval.status == "waiting":
                    approval.status = "approved"

        def down() -> None:
            sim.mode = "down"

        yield Harness(conn, {}, defer, approve, down)


@asynccontextmanager
async def _local(tmp: Path) -> AsyncIterator[Harness]:
    from connectors.localca.connector import LocalCAConnector
    from connectors.localca.settings import LocalCASettings

    settings = LocalCASettings.from_options({"type": "local"}, tmp, "local")
    conn = LocalCAConnector("local", settings)
    await conn.start()
    try:
        yield Harness(conn, {})
    finally:
        await conn.aclose()


HARNESSES = {
    "certsrv-basic": lambda tmp: _certsrv(tmp, "basic"),
    "certsrv-ntlm": lambda tmp: _certsrv(tmp, "ntlm"),
    "ejbca": _ejbca,
    "local": _local,
}


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """Every connector in turn."""
    async with AsyncExitStack() as stack:
        yield await stack.enter_async_context(HARNESSES[request.param](tmp_path))


def _spki(cert_or_key: x509.Certificate) -> bytes:
    return cert_or_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


async def test_is_a_connector(harness: Harness) -> None:
    assert isinstance(harness.connector, Connector)
    await harness.connector.check()


async def test_issue_signs_the_csr_key_and_names_under_the_ca_chain(harness: Harness) -> None:
    csr_der, key = make_csr(["a.example.net", "b.example.net"])
    req = request([], harness.params)
    req = type(req)("order-c1", csr_der, req.profile, ("a.example.net", "b.example.net"))
    result = await harness.connector.issue(req)
    assert isinstance(result, Issued)
    leaf = x509.load_der_x509_certificate(result.leaf_der)
    assert _spki(leaf) == key.public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == ["a.example.net", "b.example.net"]
    issuer = x509.load_der_x509_certificate(result.chain_der[0])
    leaf.verify_directly_issued_by(issuer)
    ca_certs = await harness.connector.ca_certs()
    assert ca_certs[0] == result.chain_der[0]


async def test_revoke_once_or_say_unsupported(harness: Harness) -> None:
    result = await harness.connector.issue(request(["r.example.net"], harness.params))
    assert isinstance(result, Issued)
    try:
        await harness.connector.revoke(result.leaf_der, RevocationReason.KEY_COMPROMISE)
    except RevocationUnsupported as exc:
        assert "not supported" in str(exc)
        return
    with pytest.raises(AlreadyRevoked):
        await harness.connector.revoke(result.leaf_der, RevocationReason.KEY_COMPROMISE)


async def test_pending_then_approved(harness: Harness) -> None:
    if harness.defer is None or harness.approve is None:
        pytest.skip("this CA never defers a request")
    harness.defer()
    first = await harness.connector.issue(request(["p.example.net"], harness.params, "order-p"))
    assert isinstance(first, Pending) and first.ref
    assert first.retry_after and first.retry_after > 0
    assert isinstance(await harness.connector.poll(first.ref), Pending)
    harness.approve(first.ref)
    assert isinstance(await harness.connector.poll(first.ref), Issued)


async def test_down_is_retryable_unavailable(harness: Harness) -> None:
    if harness.take_down is None:
        pytest.skip("this CA runs in process and cannot be taken down")
    harness.take_down()
    with pytest.raises(CAUnavailable) as info:
        await harness.connector.issue(request(["d.example.net"], harness.params))
    assert info.value.retryable
    with pytest.raises(CAUnavailable):
        await harness.connector.check()


def _unstartable(tmp: Path, kind: str) -> Connector:
    """A connector whose start() must fail, and why."""
    from connectors.adcs.connector import CertsrvConnector, CertsrvSettings
    from connectors.ejbca.connector import EjbcaConnector, EjbcaSettings
    from connectors.localca.connector import LocalCAConnector, LocalCASettings

    (tmp / "pw").write_text("pw\n")
    (tmp / "not-a-dir").write_text("")
    if kind == "local":  # the CA directory is a file
        return LocalCAConnector("edge", LocalCASettings.from_options(
            {"type": "local", "dir": str(tmp / "not-a-dir")}, tmp, "edge"))
    if kind == "adcs":  # the trust bundle went missing after the config was read
        (tmp / "gone.pem").write_text("")
        adcs = CertsrvConnector("corp", CertsrvSettings.from_options(
            {"type": "adcs", "url": "https://127.0.0.1:9/certsrv", "auth": "basic",
             "username": "u", "password_file": str(tmp / "pw"),
             "ca_bundle_file": str(tmp / "gone.pem")}, tmp, "corp"))
        (tmp / "gone.pem").unlink()
        return adcs
    (tmp / "admin.p12").write_bytes(b"\x30\x03\x02\x01\x03")  # not a usable PKCS#12
    return EjbcaConnector("ej", EjbcaSettings.from_options(
        {"type": "ejbca", "url": "https://127.0.0.1:9/ejbca", "pkcs12_file":
         str(tmp / "admin.p12"), "pkcs12_passphrase_file": str(tmp / "pw")}, tmp, "ej"))


@pytest.mark.parametrize(("kind", "name"), [("local", "edge"), ("adcs", "corp"), ("ejbca", "ej")])
async def test_a_failed_start_is_one_line_naming_the_ca(tmp_path: Path, kind: str,
                                                        name: str) -> None:
    from connectors.base import ConnectorError

    connector = _unstartable(tmp_path, kind)
    with pytest.raises(ConnectorError) as failed:
        await connector.start()  # type: ignore[attr-defined]
    text = str(failed.value)
    assert "\n" not in text and text.startswith(f"[cas.{name}]"), text
