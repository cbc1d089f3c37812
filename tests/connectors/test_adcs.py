"""CertsrvConnector against the certsrv simulator: auth, verdicts, polling, faults."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from connectors.adcs.connector import CertsrvConnector, CertsrvSettings
from connectors.base import (
    CAConfigError,
    CAProtocolError,
    CAUnavailable,
    Issued,
    Pending,
    Rejected,
    RevocationReason,
    RevocationUnsupported,
    SubmissionInDoubt,
)
from tests.connectors.simulators import certsrv, certsrv_options, request

WEB = {"template": "WebServer"}


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
async def test_issue_returns_leaf_and_chain(tmp_path: Path, auth: str) -> None:
    async with certsrv(tmp_path, auth=auth) as (sim, conn):
        result = await conn.issue(request(["www.example.net"], WEB))
    assert isinstance(result, Issued)
    leaf = x509.load_der_x509_certificate(result.leaf_der)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["www.example.net"]
    assert [x509.load_der_x509_certificate(c).subject for c in result.chain_der] == [
        sim.ca.cert.subject,
        sim.ca.root.subject,
    ]


async def test_negotiate_falls_back_to_ntlm_inside_spnego(tmp_path: Path) -> None:
    # Without a Kerberos ticket, Negotiate carries NTLM inside SPNEGO tokens.
    async with certsrv(tmp_path, auth="negotiate") as (sim, conn):
        assert isinstance(await conn.issue(request(["n.example.net"], WEB)), Issued)
    assert sim.auth_legs[-1] == "ntlm-ok"


async def test_ntlm_handshake_runs_once_per_connection(tmp_path: Path) -> None:
    async with certsrv(tmp_path, auth="ntlm") as (sim, conn):
        await conn.issue(request(["a.example.net"], WEB))
        await conn.check()
    # one handshake (negotiate+challenge, authenticate), then the kept-alive
    # connection stays authenticated for the chain fetches and the check
    assert sim.auth_legs == ["ntlm-1", "ntlm-ok"]


async def test_concurrent_ntlm_requests_share_a_few_authenticated_lanes(tmp_path: Path) -> None:
    async with certsrv(tmp_path, auth="ntlm", max_connections=2) as (sim, conn):
        results = await asyncio.gather(
            *(conn.issue(request([f"h{i}.example.net"], WEB, f"o{i}")) for i in range(8))
        )
    assert all(isinstance(r, Issued) for r in results)
    # each lane (one kept-alive connection) authenticates once, however many requests it carries
    assert sim.auth_legs.count("ntlm-ok") == 2
    assert "ntlm-refused" not in sim.auth_legs


async def test_ntlm_without_channel_bindings_is_refused_by_epa_server(tmp_path: Path) -> None:
    async with certsrv(tmp_path, auth="ntlm", channel_bindings=False) as (sim, conn):
        with pytest.raises(CAConfigError, match="refused the ntlm credentials"):
            await conn.check()
    assert "ntlm-refused" in sim.auth_legs


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
async def test_wrong_password_names_the_fix(tmp_path: Path, auth: str) -> None:
    async with certsrv(tmp_path, auth=auth) as (sim, conn):
        sim.password = "other"
        (tmp_path / "sim" / "ntlm_users").write_text("EXAMPLE:alice:other\n")
        with pytest.raises(CAConfigError, match="password_file"):
            await conn.check()


async def test_client_certificate_auth(tmp_path: Path) -> None:
    from tests.fakes.certsrv import CertsrvSimulator

    sim = CertsrvSimulator(tmp_path / "sim", auth="client_cert")
    await sim.start()
    cert, key = sim.ca.write_leaf(sim.ca.leaf("gw", client=True), tmp_path, "client")
    options = certsrv_options(
        sim, "client_cert", client_cert_file=str(cert), client_key_file=str(key)
    )
    conn = CertsrvConnector("adcs", CertsrvSettings.from_options(options, tmp_path), None)
    await conn.start()
    try:
        assert len(await conn.ca_certs()) == 2
    finally:
        await conn.aclose()
        await sim.stop()


async def test_pending_then_approved(tmp_path: Path) -> None:
    async with certsrv(tmp_path, mode="pending", poll_interval_seconds=5) as (sim, conn):
        first = await conn.issue(request(["p.example.net"], WEB))
        assert isinstance(first, Pending) and first.retry_after == 5.0
        assert isinstance(await conn.poll(first.ref), Pending)
        sim.approve(int(first.ref))
        assert isinstance(await conn.poll(first.ref), Issued)


@pytest.mark.parametrize(("retries", "recovers"), [(1, True), (0, False)])
async def test_reads_are_retried_after_a_transient_failure(
    tmp_path: Path, retries: int, recovers: bool
) -> None:
    async with certsrv(tmp_path, mode="pending", retries=retries) as (sim, conn):
        first = await conn.issue(request(["p.example.net"], WEB))
        assert isinstance(first, Pending)
        sim.approve(int(first.ref))
        sim.fail_next = 1
        if recovers:
            assert isinstance(await conn.poll(first.ref), Issued)
        else:
            with pytest.raises(CAUnavailable, match="503"):
                await conn.poll(first.ref)


async def test_submission_is_not_retried(tmp_path: Path) -> None:
    async with certsrv(tmp_path, retries=2) as (sim, conn):
        sim.fail_next = 1
        with pytest.raises(CAUnavailable):
            await conn.issue(request(["p.example.net"], WEB))
    assert sim.requests == {}


async def test_pending_then_denied_by_officer(tmp_path: Path) -> None:
    async with certsrv(tmp_path, mode="pending") as (sim, conn):
        first = await conn.issue(request(["p.example.net"], WEB))
        assert isinstance(first, Pending)
        sim.deny(int(first.ref), "Denied by Administrator")
        assert await conn.poll(first.ref) == Rejected("Denied by Administrator")


async def test_unknown_template_is_rejected_with_disposition(tmp_path: Path) -> None:
    async with certsrv(tmp_path) as (_, conn):
        result = await conn.issue(request(["x.example.net"], {"template": "NoSuch"}))
    assert isinstance(result, Rejected)
    assert "certificate template that is not supported" in result.reason
    assert "NoSuch" in result.reason


async def test_deny_mode(tmp_path: Path) -> None:
    async with certsrv(tmp_path, mode="deny") as (_, conn):
        result = await conn.issue(request(["x.example.net"], WEB))
    assert isinstance(result, Rejected) and "Denied by Policy Module" in result.reason


async def test_missing_template_is_config_error(tmp_path: Path) -> None:
    async with certsrv(tmp_path) as (_, conn):
        with pytest.raises(CAConfigError, match="ca_params.template"):
            await conn.issue(request(["x.example.net"], {}))


async def test_default_template_applies(tmp_path: Path) -> None:
    async with certsrv(tmp_path, default_template="User") as (sim, conn):
        assert isinstance(await conn.issue(request(["x.example.net"], {})), Issued)
    assert [r.template for r in sim.requests.values()] == ["User"]


async def test_ca_certs_issuing_ca_first(tmp_path: Path) -> None:
    async with certsrv(tmp_path) as (sim, conn):
        certs = await conn.ca_certs()
    assert [x509.load_der_x509_certificate(c).subject for c in certs] == [
        sim.ca.cert.subject,
        sim.ca.root.subject,
    ]


async def test_revoke_is_unsupported(tmp_path: Path) -> None:
    async with certsrv(tmp_path) as (_, conn):
        with pytest.raises(RevocationUnsupported, match="not supported by certsrv"):
            await conn.revoke(b"", RevocationReason.KEY_COMPROMISE)


async def test_down_is_unavailable(tmp_path: Path) -> None:
    async with certsrv(tmp_path, mode="down") as (_, conn):
        with pytest.raises(CAUnavailable, match="HTTP 503"):
            await conn.issue(request(["x.example.net"], WEB))
        with pytest.raises(CAUnavailable):
            await conn.check()


async def test_garbage_page_is_protocol_error(tmp_path: Path) -> None:
    async with certsrv(tmp_path, mode="garbage") as (_, conn):
        with pytest.raises(CAProtocolError, match="Under maintenance"):
            await conn.issue(request(["x.example.net"], WEB))


async def test_slow_ca_times_out(tmp_path: Path) -> None:
    async with certsrv(tmp_path, mode="slow", timeout_seconds=0.2, retries=0) as (_, conn):
        with pytest.raises(CAUnavailable, match="timeout"):
            await conn.check()


async def test_unreachable_ca(tmp_path: Path) -> None:
    async with certsrv(tmp_path) as (sim, _):
        options = certsrv_options(sim, "basic") | {
            "url": "https://127.0.0.1:9/certsrv",
            "retries": 0,
        }
    conn = CertsrvConnector("adcs", CertsrvSettings.from_options(options, tmp_path), None)
    await conn.start()
    try:
        with pytest.raises(CAUnavailable, match="cannot connect"):
            await conn.check()
    finally:
        await conn.aclose()


async def test_untrusted_server_certificate_is_config_error(tmp_path: Path) -> None:
    async with certsrv(tmp_path) as (sim, _):
        options = certsrv_options(sim, "basic")
        del options["ca_bundle_file"]
        conn = CertsrvConnector("adcs", CertsrvSettings.from_options(options, tmp_path), None)
        await conn.start()
        try:
            with pytest.raises(CAConfigError, match="ca_bundle_file"):
                await conn.check()
        finally:
            await conn.aclose()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"password": "inline"}, "never inline"),
        ({"url": "http://ca/certsrv"}, "https://"),
        ({"auth": "digest"}, "expected one of"),
        ({"password_file": None}, "needs username and password"),
        ({"auth": "client_cert"}, "client_cert needs"),
        ({"colour": "blue"}, "unknown option"),
        ({"password_file": "/nonexistent/pw"}, "password_file"),
    ],
)
def test_settings_errors_name_the_key(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    (tmp_path / "pw").write_text("x\n")
    options: dict[str, object] = {
        "type": "adcs",
        "url": "https://ca/certsrv",
        "username": "u",
        "password_file": str(tmp_path / "pw"),
    }
    for key, value in change.items():
        if value is None:
            options.pop(key)
        else:
            options[key] = value
    with pytest.raises(CAConfigError, match=message) as info:
        CertsrvSettings.from_options(options, tmp_path, "corp")
    assert "[cas.corp]" in str(info.value)


def test_password_never_in_repr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADCS_PW", "hunter2-secret")
    settings = CertsrvSettings.from_options(
        {"url": "https://ca/certsrv", "username": "u", "password_env": "ADCS_PW"}, tmp_path
    )
    assert settings.password == "hunter2-secret"
    assert "hunter2" not in repr(settings)


async def test_a_none_page_while_pending_is_still_pending(tmp_path: Path) -> None:
    async with certsrv(tmp_path, mode="pending") as (sim, conn):
        pending = await conn.issue(request(["p.example.net"], WEB))
        assert isinstance(pending, Pending)
        sim.mode = "stopped"  # the CA service stops while the officer has not decided
        again = await conn.poll(pending.ref)
        assert isinstance(again, Pending) and again.ref == pending.ref
        assert "no disposition" in again.message
        sim.mode = "pending"
        sim.approve(int(pending.ref))
        assert isinstance(await conn.poll(pending.ref), Issued)


async def test_a_stopped_ca_service_is_no_verdict_on_submission(tmp_path: Path) -> None:
    async with certsrv(tmp_path, mode="stopped") as (sim, conn):
        with pytest.raises(CAUnavailable, match="RPC server is unavailable"):
            await conn.issue(request(["s.example.net"], WEB))
    assert sim.requests == {}


async def test_a_lost_answer_is_looked_up_and_never_submitted_twice(tmp_path: Path) -> None:
    async with certsrv(tmp_path, timeout_seconds=0.5) as (sim, conn):
        await conn.issue(request(["first.example.net"], WEB, "o1"))  # seen: request 41
        sim.mode, sim.slow_seconds = "lost", 30.0
        lost = request(["lost.example.net"], WEB, "o2")
        with pytest.raises(SubmissionInDoubt) as doubt:
            await conn.issue(lost)
        sim.release()
        found = await conn.lookup(lost, doubt.value.hint)
    assert isinstance(found, Issued)
    assert x509.load_der_x509_certificate(found.leaf_der).serial_number == \
        sim.requests[42].cert.serial_number  # type: ignore[union-attr]
    assert len(sim.requests) == 2


async def test_a_lost_answer_waits_while_a_request_is_undecided(tmp_path: Path) -> None:
    async with certsrv(tmp_path, timeout_seconds=0.5) as (sim, conn):
        await conn.issue(request(["first.example.net"], WEB, "o1"))
        sim.mode, sim.slow_seconds = "pending", 30.0
        lost = request(["lost.example.net"], WEB, "o2")
        await conn.issue(request(["other.example.net"], WEB, "o3"))  # someone's pending 42
        waiting = await conn.lookup(lost, "after:41")
        assert isinstance(waiting, Pending) and waiting.ref.startswith("scan:41:")
        sim.deny(42)  # not ours after all, and nothing else came: the CA holds nothing of ours
        gone = await conn.poll(waiting.ref)
    assert isinstance(gone, Rejected) and "holds no request from this order" in gone.reason


async def test_lookup_by_request_id_fetches_that_request(tmp_path: Path) -> None:
    async with certsrv(tmp_path) as (sim, conn):
        req = request(["x.example.net"], WEB)
        first = await conn.issue(req)
        again = await conn.lookup(req, "id:41")
        nothing = await conn.lookup(req, "after:0")  # no starting point: submit again
    assert isinstance(first, Issued) and isinstance(again, Issued)
    assert again.leaf_der == first.leaf_der and nothing is None


@pytest.mark.parametrize(("end_date_flag", "days"), [(True, 30), (False, 730)])
async def test_validity_travels_as_request_attributes(tmp_path: Path, end_date_flag: bool,
                                                      days: int) -> None:
    async with certsrv(tmp_path) as (sim, conn):
        sim.attribute_end_date = end_date_flag
        req = request(["v.example.net"], WEB)
        req = replace(req, profile=replace(req.profile, validity=timedelta(days=30)))
        issued = await conn.issue(req)
    assert isinstance(issued, Issued)
    leaf = x509.load_der_x509_certificate(issued.leaf_der)
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days == days


async def test_the_lookup_starting_point_survives_a_restart(tmp_path: Path) -> None:
    async with certsrv(tmp_path, timeout_seconds=0.5) as (sim, conn):
        await conn.issue(request(["first.example.net"], WEB, "o1"))  # request 41
        restarted = CertsrvConnector("adcs", conn.settings)
        await restarted.start()
        try:
            sim.mode, sim.slow_seconds = "lost", 30.0
            lost = request(["lost.example.net"], WEB, "o2")
            with pytest.raises(SubmissionInDoubt) as doubt:
                await restarted.issue(lost)
            assert doubt.value.hint == "after:41"
            sim.release()
            assert isinstance(await restarted.lookup(lost, doubt.value.hint), Issued)
        finally:
            await restarted.aclose()
    assert len(sim.requests) == 2
