"""SCEP refusals: a signed CertRep FAILURE with its failInfo, its reason and an audit row."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.scep import message as m
from tests.scep.client import rsa_key, scep_csr
from tests.scep.support import PASSWORD, ScepGateway
from tests.weakkeys import WEAK_KEYS

WEAK_NAME, (WEAK_KEY, WEAK_WORDS) = sorted(WEAK_KEYS.items())[0]

# id, label, CSR factory, failInfo, audit event, words of the reason
CASES: list[tuple[str, str, Callable[[], bytes], str, str, str]] = [
    ("wrong password", "routers",
     lambda: scep_csr(rsa_key(), "a.routers.example.net", "guess"),
     m.BAD_REQUEST, "unauthorized", "wrong challenge password"),
    ("no password", "routers", lambda: scep_csr(rsa_key(), "a.routers.example.net", None),
     m.BAD_REQUEST, "unauthorized", "has no challengePassword"),
    ("name outside the label", "routers",
     lambda: scep_csr(rsa_key(), "a.other.example.net", PASSWORD),
     m.BAD_REQUEST, "unauthorized", "may not request a.other.example.net"),
    (f"weak key: {WEAK_NAME}", "routers",
     lambda: scep_csr(WEAK_KEY(), "w.routers.example.net", PASSWORD),  # type: ignore[arg-type]
     m.BAD_REQUEST, "policy_refused", "the CSR's public key is weak"),
    ("unknown one-time password", "otp",
     lambda: scep_csr(rsa_key(), "a.routers.example.net", "not-issued"),
     m.BAD_REQUEST, "unauthorized", "wrong challenge password"),
]


@pytest.mark.parametrize(("case", "label", "csr", "fail_info", "event", "words"), CASES,
                         ids=[c[0] for c in CASES])
async def test_refused_with_fail_info_and_audited(gw: ScepGateway, case: str, label: str,
                                                  csr: Callable[[], bytes], fail_info: str,
                                                  event: str, words: str) -> None:
    rep = await gw.device(label).enroll(csr(), f"tx-{label}")
    assert (rep.status, rep.fail_info) == (m.FAILURE, fail_info), rep.fail_text
    assert words in rep.fail_text and not rep.certs
    rows = await gw.audit(event)
    assert len(rows) == 1 and words in rows[0]["detail"], rows
    assert await gw.audit("issued") == []


async def test_one_time_password_enrolls_once(gw: ScepGateway) -> None:
    otp = await gw.core.scep.otps.issue(gw.gate("otp"), ("dev7.routers.example.net",),
                                         "cli:test")
    first = await gw.device("otp").enroll(scep_csr(rsa_key(), "dev7.routers.example.net", otp),
                                          "tx-first")
    assert first.status == m.SUCCESS, first.fail_text
    again = await gw.device("otp").enroll(scep_csr(rsa_key(), "dev7.routers.example.net", otp),
                                          "tx-again")
    assert (again.status, again.fail_info) == (m.FAILURE, m.BAD_REQUEST)
    assert "already been used" in again.fail_text
    (row,) = await gw.audit("unauthorized")
    assert "already been used" in row["detail"] and row["actor"].startswith("scep:otp:")


async def test_one_time_password_binds_its_names(gw: ScepGateway) -> None:
    otp = await gw.core.scep.otps.issue(gw.gate("otp"), ("dev8.routers.example.net",),
                                         "cli:test")
    rep = await gw.device("otp").enroll(scep_csr(rsa_key(), "dev9.routers.example.net", otp),
                                        "tx-names")
    assert rep.fail_info == m.BAD_REQUEST and "may not request dev9" in rep.fail_text


async def test_resent_request_is_answered_again_without_a_second_certificate(
        gw: ScepGateway) -> None:
    device = gw.device()
    csr = scep_csr(device.key, "r5.routers.example.net", PASSWORD)
    first = await device.enroll(csr, "tx-resend")
    second = await device.enroll(csr, "tx-resend")
    assert first.status == second.status == m.SUCCESS
    assert first.certs[0].serial_number == second.certs[0].serial_number
    assert len(await gw.audit("issued")) == 1


async def test_transaction_id_of_another_key_is_refused(gw: ScepGateway) -> None:
    device = gw.device()
    ok = await device.enroll(scep_csr(device.key, "r6.routers.example.net", PASSWORD), "tx-r")
    assert ok.status == m.SUCCESS
    thief = gw.device()  # another key, the same transactionID
    rep = await thief.enroll(scep_csr(thief.key, "r7.routers.example.net", PASSWORD), "tx-r")
    assert (rep.status, rep.fail_info) == (m.FAILURE, m.BAD_REQUEST)
    assert "already bound to a request signed by another key" in rep.fail_text
    assert len(await gw.audit("unauthorized")) == 1
    again = await device.enroll(scep_csr(device.key, "r7.routers.example.net", PASSWORD), "tx-r")
    assert again.status == m.SUCCESS  # a new CSR from the same key: a new enrollment
    assert again.certs[0].serial_number != ok.certs[0].serial_number
    poll = await device.poll("tx-r")  # the transaction now follows the new request
    assert poll.certs[0].serial_number == again.certs[0].serial_number


async def test_poll_of_unknown_transaction_is_bad_cert_id(gw: ScepGateway) -> None:
    rep = await gw.device().poll("never-sent")
    assert (rep.status, rep.fail_info) == (m.FAILURE, m.BAD_CERT_ID)


async def test_des3_and_md5_only_where_the_label_allows_them(gw: ScepGateway) -> None:
    device = gw.device()
    csr = scep_csr(device.key, "r8.routers.example.net", PASSWORD)
    refused = await device.enroll(csr, "tx-des", cipher="tripledes_3key")
    assert (refused.status, refused.fail_info) == (m.FAILURE, m.BAD_MESSAGE_CHECK)
    legacy = gw.device("legacy")
    rep = await legacy.enroll(scep_csr(legacy.key, "r8.example.net", PASSWORD), "tx-des",
                              cipher="tripledes_3key")
    assert rep.status == m.SUCCESS, rep.fail_text


async def test_tampered_signature_is_bad_message_check(gw: ScepGateway) -> None:
    device = gw.device()
    der, _ = device.request(m.PKCS_REQ, scep_csr(device.key, "r9.routers.example.net",
                                                 PASSWORD), "tx-tamper")
    tampered = der[:-10] + bytes(b ^ 0xFF for b in der[-10:])  # inside the signature
    status, body = await device.send(tampered)
    rep = device.read(body)
    assert status == 200 and (rep.status, rep.fail_info) == (m.FAILURE, m.BAD_MESSAGE_CHECK)
    assert len(await gw.audit("unauthorized")) == 1
