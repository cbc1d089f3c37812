"""EjbcaConnector against the EJBCA simulator: enrollment, approvals, revocation, faults."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography import x509

from connectors.base import (
    AlreadyRevoked,
    CAConfigError,
    CAUnavailable,
    ConnectorError,
    Issued,
    Pending,
    Rejected,
    RevocationReason,
    RevocationUnsupported,
)
from connectors.ejbca.connector import EjbcaConnector, EjbcaSettings
from tests.connectors.simulators import ejbca, ejbca_options, request
from tests.fakes.ejbca import EjbcaSimulator


async def test_issue_with_chain(tmp_path: Path) -> None:
    async with ejbca(tmp_path) as (sim, conn):
        result = await conn.issue(request(["www.example.net"], {}, request_id="o-7"))
    assert isinstance(result, Issued)
    assert [x509.load_der_x509_certificate(c).subject for c in result.chain_der] == [
        sim.ca.cert.subject,
        sim.ca.root.subject,
    ]
    assert list(sim.entities) == ["acme-o-7"]


@pytest.mark.parametrize(
    ("params", "username"),
    [
        ({"username_strategy": "cn"}, "host.example.net"),
        ({"username_strategy": "fixed", "username": "acme-robot"}, "acme-robot"),
        ({}, "acme-order-1"),
    ],
)
async def test_username_strategies(tmp_path: Path, params: dict[str, str], username: str) -> None:
    async with ejbca(tmp_path) as (sim, conn):
        assert isinstance(
            await conn.issue(request(["host.example.net", "b.example.net"], params)), Issued
        )
    assert list(sim.entities) == [username]


async def test_profile_params_override_and_enrollment_code_file(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.write_text("enroll-me\n")
    params = {
        "certificate_profile": "ENDUSER",
        "end_entity_profile": "EMPTY",
        "enrollment_code_file": str(code),
    }
    async with ejbca(tmp_path) as (sim, conn):
        assert isinstance(await conn.issue(request(["a.example.net"], params)), Issued)
    assert sim.entities["acme-order-1"].password == "enroll-me"


async def test_approval_is_finalized_once_by_request_id(tmp_path: Path) -> None:
    async with ejbca(tmp_path, mode="approval", poll_interval_seconds=7) as (sim, conn):
        first = await conn.issue(request(["a.example.net"], {}, request_id="o-9"))
        assert isinstance(first, Pending) and first.retry_after == 7.0
        assert "EJBCA approval request 101" in first.message
        for _ in range(3):  # polls while waiting finalize; they never enroll again
            waiting = await conn.poll(first.ref)
            assert isinstance(waiting, Pending) and "still waiting" in waiting.message
        sim.approve("acme-o-9")
        issued = await conn.poll(first.ref)
        assert isinstance(issued, Issued)
        assert issued.chain_der == sim.ca.chain_der  # finalize sends no chain: read from EJBCA
        again = await conn.poll(first.ref)  # a lost finalize answer: the certificate is found
        assert isinstance(again, Issued) and again.leaf_der == issued.leaf_der
    assert sim.enroll_calls == 1 and list(sim.approvals) == [101]
    assert len(sim.entities["acme-o-9"].serials) == 1


async def test_approval_rejected(tmp_path: Path) -> None:
    async with ejbca(tmp_path, mode="approval") as (sim, conn):
        first = await conn.issue(request(["a.example.net"], {}))
        assert isinstance(first, Pending)
        sim.reject("acme-order-1")
        result = await conn.poll(first.ref)
    assert isinstance(result, Rejected) and "has been rejected" in result.reason


async def test_approval_without_a_request_id_is_refused_with_the_way_out(tmp_path: Path) -> None:
    async with ejbca(tmp_path, mode="approval", approval_style="400") as (sim, conn):
        result = await conn.issue(request(["a.example.net"], {}))
    assert isinstance(result, Rejected)
    assert "no approval request id" in result.reason and "approval_required" in result.reason


async def test_a_lost_enrollment_answer_is_found_not_enrolled_again(tmp_path: Path) -> None:
    async with ejbca(tmp_path) as (sim, conn):
        req = request(["a.example.net"], {}, request_id="o-5")
        issued = await conn.issue(req)
        found = await conn.lookup(req, "")
        other = await conn.lookup(request(["b.example.net"], {}, request_id="o-6"), "")
    assert isinstance(issued, Issued) and isinstance(found, Issued)
    assert found.leaf_der == issued.leaf_der and other is None
    assert sim.enroll_calls == 1


async def test_pending_ref_carries_no_enrollment_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EJ_CODE", "very-secret-code")
    async with ejbca(tmp_path, mode="approval", enrollment_code_env="EJ_CODE") as (sim, conn):
        first = await conn.issue(request(["a.example.net"], {}))
    assert isinstance(first, Pending)
    assert sim.entities["acme-order-1"].password == "very-secret-code"
    assert b"very-secret-code" not in base64.urlsafe_b64decode(first.ref[7:] + "===")
    assert "very-secret-code" not in repr(conn.settings)


async def test_a_derived_enrollment_code_is_the_same_at_finalize(tmp_path: Path) -> None:
    # No configured code: the code is derived from the username with a key file, so
    # finalize (even after a restart) sends what the enrollment sent.
    async with ejbca(tmp_path, mode="approval") as (sim, conn):
        first = await conn.issue(request(["a.example.net"], {}))
        code = sim.entities["acme-order-1"].password
    assert isinstance(first, Pending) and code
    assert code.encode() not in base64.urlsafe_b64decode(first.ref[7:] + "===")
    key_file = tmp_path / "ejbca-ejbca-codes.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    async with ejbca(tmp_path, mode="approval") as (sim2, conn2):
        await conn2.issue(request(["a.example.net"], {}))
    assert sim2.entities["acme-order-1"].password == code


async def test_offline_ca_is_retryable(tmp_path: Path) -> None:
    async with ejbca(tmp_path, mode="offline") as (_, conn):
        with pytest.raises(CAUnavailable, match="offline") as info:
            await conn.issue(request(["a.example.net"], {}))
        assert info.value.retryable
        with pytest.raises(CAUnavailable):
            await conn.check()


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"ca_name": "NoSuchCA"}, "doesn't exist"),
        ({"certificate_profile": "NOPE"}, "Could not find profile"),
        ({"end_entity_profile": "NOPE"}, "not found"),
    ],
)
async def test_unknown_names_are_config_errors(
    tmp_path: Path, params: dict[str, str], match: str
) -> None:
    async with ejbca(tmp_path) as (_, conn):
        with pytest.raises(CAConfigError, match=match):
            await conn.issue(request(["a.example.net"], params))


async def test_revoke_then_already_revoked(tmp_path: Path) -> None:
    async with ejbca(tmp_path) as (sim, conn):
        issued = await conn.issue(request(["a.example.net"], {}))
        assert isinstance(issued, Issued)
        await conn.revoke(issued.leaf_der, RevocationReason.KEY_COMPROMISE)
        serial = x509.load_der_x509_certificate(issued.leaf_der).serial_number
        assert sim.revoked == {serial: "KEY_COMPROMISE"}
        with pytest.raises(AlreadyRevoked):
            await conn.revoke(issued.leaf_der, RevocationReason.SUPERSEDED)
        with pytest.raises(RevocationUnsupported):
            await conn.revoke(issued.leaf_der, RevocationReason.REMOVE_FROM_CRL)


async def test_revoke_unknown_certificate(tmp_path: Path) -> None:
    async with ejbca(tmp_path) as (sim, conn):
        stranger = sim.ca.leaf("not-issued-by-enroll")  # issued outside the end-entity flow
        sim.ca.issued.pop(stranger.cert.serial_number, None)
        from cryptography.hazmat.primitives.serialization import Encoding

        with pytest.raises(ConnectorError, match="refused to revoke"):
            await conn.revoke(
                stranger.cert.public_bytes(Encoding.DER), RevocationReason.UNSPECIFIED
            )


async def test_ca_certs_and_check(tmp_path: Path) -> None:
    async with ejbca(tmp_path) as (sim, conn):
        await conn.check()
        certs = await conn.ca_certs()
    assert [x509.load_der_x509_certificate(c).subject for c in certs] == [
        sim.ca.cert.subject,
        sim.ca.root.subject,
    ]


async def test_check_names_a_missing_ca(tmp_path: Path) -> None:
    async with ejbca(tmp_path, ca_name="OtherCA") as (_, conn):
        with pytest.raises(
            CAConfigError, match="'OtherCA' does not pick one CA; EJBCA has: IssuingCA"
        ):
            await conn.check()


async def test_down_is_unavailable(tmp_path: Path) -> None:
    async with ejbca(tmp_path, mode="down") as (_, conn):
        with pytest.raises(CAUnavailable):
            await conn.issue(request(["a.example.net"], {}))


async def test_client_cert_without_admin_role_is_config_error(tmp_path: Path) -> None:
    sim = EjbcaSimulator(tmp_path / "ejbca")
    await sim.start()
    cert, key = sim.client_files(cn="Someone Else")
    options = ejbca_options(sim) | {"client_cert_file": str(cert), "client_key_file": str(key)}
    conn = EjbcaConnector("ejbca", EjbcaSettings.from_options(options, tmp_path), None)
    await conn.start()
    try:
        with pytest.raises(CAConfigError, match="admin"):
            await conn.issue(request(["a.example.net"], {}))
        with pytest.raises(CAConfigError, match="not authorized"):
            await conn.check()
    finally:
        await conn.aclose()
        await sim.stop()


async def test_expired_client_certificate_named_at_start(tmp_path: Path) -> None:
    sim = EjbcaSimulator(tmp_path / "ejbca")
    cert, key = sim.client_files(expired=True)
    options = ejbca_options(sim) | {
        "url": "https://127.0.0.1:9/x",
        "client_cert_file": str(cert),
        "client_key_file": str(key),
    }
    conn = EjbcaConnector("ejbca", EjbcaSettings.from_options(options, tmp_path), None)
    with pytest.raises(CAConfigError, match="expired on .* renew"):
        await conn.start()


async def test_pkcs12_client_certificate(tmp_path: Path) -> None:
    sim = EjbcaSimulator(tmp_path / "ejbca")
    await sim.start()
    p12 = sim.ca.write_pkcs12(
        sim.ca.leaf("RA Admin", client=True), tmp_path / "admin.p12", b"p12-pass"
    )
    (tmp_path / "p12pw").write_text("p12-pass\n")
    options = ejbca_options(sim)
    del options["client_cert_file"], options["client_key_file"]
    options |= {"pkcs12_file": str(p12), "pkcs12_passphrase_file": str(tmp_path / "p12pw")}
    conn = EjbcaConnector("ejbca", EjbcaSettings.from_options(options, tmp_path), None)
    await conn.start()
    try:
        await conn.check()
    finally:
        await conn.aclose()
        await sim.stop()


def test_wrong_pkcs12_passphrase_is_config_error(tmp_path: Path) -> None:
    sim = EjbcaSimulator(tmp_path / "ejbca")
    p12 = sim.ca.write_pkcs12(
        sim.ca.leaf("RA Admin", client=True), tmp_path / "admin.p12", b"right"
    )
    (tmp_path / "pw").write_text("wrong\n")
    options = {
        "url": "https://127.0.0.1:1/x",
        "pkcs12_file": str(p12),
        "pkcs12_passphrase_file": str(tmp_path / "pw"),
    }
    settings = EjbcaSettings.from_options(options, tmp_path)
    with pytest.raises(CAConfigError, match="pkcs12_passphrase"):
        settings.tls.ssl_context("[cas.ejbca]")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"url": "https://e/x"}, "client certificate"),
        ({"url": "https://e/x", "enrollment_code": "inline"}, "never inline"),
        ({"url": "https://e/x", "username_strategy": "random"}, "expected one of"),
        ({"url": "http://e/x"}, "https://"),
    ],
)
def test_settings_errors(tmp_path: Path, options: dict[str, str], match: str) -> None:
    with pytest.raises(CAConfigError, match=match):
        EjbcaSettings.from_options(options, tmp_path)


async def test_unreachable(tmp_path: Path) -> None:
    sim = EjbcaSimulator(tmp_path / "ejbca")
    options = ejbca_options(sim) | {"url": "https://127.0.0.1:9/ejbca/ejbca-rest-api", "retries": 0}
    conn = EjbcaConnector("ejbca", EjbcaSettings.from_options(options, tmp_path), None)
    await conn.start()
    try:
        with pytest.raises(CAUnavailable, match="cannot connect"):
            await conn.check()
    finally:
        await conn.aclose()
