"""End to end through the gateway app: EST to EJBCA, and a CA outage that recovers.

* EST simpleenroll (HTTP Basic) → gateway → EJBCA simulator → the device gets
  a certificate chained to the EJBCA CA.
* ACME finalize while certsrv answers 503 (CA service stopped): the order stays
  ``processing``; when certsrv comes back the persisted job's retry issues it,
  once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography import x509

from connectors.adcs.connector import CertsrvConnector, CertsrvSettings
from connectors.ejbca.connector import EjbcaConnector, EjbcaSettings
from gateway import keys
from gateway.model.clock import FakeClock
from tests.acme.flow import validate_all
from tests.acme.support import eventually
from tests.acmeclient import AcmeClient, b64, make_csr
from tests.connectors.simulators import acme_through, certsrv_options, ejbca_options
from tests.est import support
from tests.est.support import Manufacturer, certs_of, est_section, running_gateway
from tests.fakes.certsrv import CertsrvSimulator
from tests.fakes.ejbca import EjbcaSimulator

WEB = {"template": "WebServer"}


async def test_est_enroll_through_ejbca(tmp_path: Path) -> None:
    sim = EjbcaSimulator(tmp_path / "ejbca")
    await sim.start()
    try:
        options = ejbca_options(sim, username_strategy="cn")
        connector = EjbcaConnector("slow", EjbcaSettings.from_options(options, tmp_path, "slow"))
        est = est_section(Manufacturer(tmp_path).ca_file)
        async with running_gateway(tmp_path, est, slow=connector) as gw:
            key = support.ec_key()
            csr = support.make_csr(key, cn="r7.example.net", sans=("r7.example.net",))
            status, headers, body = await support.request(
                gw, "POST", "/slow/simpleenroll", support.b64(csr),
                auth=("alice", support.PASSWORD))
    finally:
        await sim.stop()
    assert status == 200, body
    assert headers["Content-Type"] == "application/pkcs7-mime; smime-type=certs-only"
    leaf = certs_of(body)[0]
    assert leaf.issuer == sim.ca.cert.subject
    assert list(sim.entities) == ["r7.example.net"]


async def _wait_valid(c: AcmeClient, order_url: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        _, order = await c.post(order_url)
        if order["status"] != "processing":
            return order  # type: ignore[no-any-return]
        assert asyncio.get_running_loop().time() < deadline, order
        await asyncio.sleep(0.1)


async def test_ca_outage_during_an_order_recovers(tmp_path: Path, aiohttp_client: Any) -> None:
    sim = CertsrvSimulator(tmp_path / "certsrv", mode="down", auth="basic")
    await sim.start()
    try:
        options = certsrv_options(sim, "basic")
        corp = CertsrvConnector("corp", CertsrvSettings.from_options(options, tmp_path, "corp"))
        _, c = await acme_through(
            aiohttp_client, tmp_path, corp, "adcs", WEB, acme={"finalize_wait_seconds": 0.5},
            jobs={"retry_base_seconds": 0.1, "retry_cap_seconds": 0.2, "max_attempts": 100,
                  "scan_period_seconds": 0.05, "breaker_cooldown_seconds": 0.2})
        order_url, order = await c.new_order(["outage.example.com"])
        await validate_all(c, order)
        csr, _ = make_csr(["outage.example.com"])
        resp, pending = await c.post(order["finalize"], {"csr": b64(csr)})
        assert resp.status == 200 and pending["status"] == "processing"
        assert resp.headers["Retry-After"]
        sim.mode = "auto"  # the CA service is started again
        done = await _wait_valid(c, order_url)
        assert done["status"] == "valid", done
        _, pem = await c.post(done["certificate"])
        leaf = x509.load_pem_x509_certificates(pem.encode())[0]
        assert leaf.issuer == sim.ca.cert.subject
        assert len(sim.requests) == 1  # issued once, although the job ran several times
    finally:
        await sim.stop()


async def test_a_lost_submission_answer_is_looked_up_not_resubmitted(
        tmp_path: Path, aiohttp_client: Any) -> None:
    sim = CertsrvSimulator(tmp_path / "certsrv", auth="basic")
    await sim.start()
    try:
        options = certsrv_options(sim, "basic", timeout_seconds=0.5)
        corp = CertsrvConnector("corp", CertsrvSettings.from_options(options, tmp_path, "corp"))
        app, c = await acme_through(
            aiohttp_client, tmp_path, corp, "adcs", WEB, acme={"finalize_wait_seconds": 0.2},
            jobs={"retry_base_seconds": 0.1, "retry_cap_seconds": 0.2,
                  "scan_period_seconds": 0.05})
        for name, mode in (("first.example.com", "auto"), ("lost.example.com", "lost")):
            sim.mode = mode
            order_url, order = await c.new_order([name])
            await validate_all(c, order)
            await c.post(order["finalize"], {"csr": b64(make_csr([name])[0])})
            if mode == "lost":
                async def gave_up() -> bool:  # the connector stopped waiting for the answer
                    return app[keys.CORE].issuance.health.states["corp"].failures > 0  # type: ignore[no-any-return]

                await eventually(gave_up)
                sim.release()
            done = await _wait_valid(c, order_url)
            assert done["status"] == "valid", done
        assert len(sim.requests) == 2  # the lost answer's request was found, not sent again
    finally:
        await sim.stop()


async def test_an_ejbca_approval_is_finalized_once(tmp_path: Path, aiohttp_client: Any) -> None:
    sim = EjbcaSimulator(tmp_path / "ejbca", mode="approval")
    await sim.start()
    try:
        options = ejbca_options(sim, poll_interval_seconds=1.0)
        ej = EjbcaConnector("ej", EjbcaSettings.from_options(options, tmp_path, "ej"))
        _, c = await acme_through(aiohttp_client, tmp_path, ej, "ejbca",
                                  acme={"finalize_wait_seconds": 0.2},
                                  jobs={"scan_period_seconds": 0.05})
        order_url, order = await c.new_order(["approved.example.com"])
        await validate_all(c, order)
        csr = make_csr(["approved.example.com"])[0]
        _, body = await c.post(order["finalize"], {"csr": b64(csr)})
        assert body["status"] == "processing"

        async def polled() -> bool:  # the job asks EJBCA while the approval waits
            return sim.finalize_calls >= 1

        await eventually(polled)
        sim.approve(next(iter(sim.entities)))
        done = await _wait_valid(c, order_url)
        assert done["status"] == "valid", done
        assert sim.enroll_calls == 1 and len(sim.approvals) == 1  # one request, finalized once
        assert sum(len(e.serials) for e in sim.entities.values()) == 1
    finally:
        await sim.stop()


async def _next_run(core: Any, clock: FakeClock, order_id: str) -> None:
    """Move the fake clock to the job's next run and wait until that run is stored."""
    job = await core.issuance.store.get_job(order_id)
    assert job is not None and job.run_at is not None
    before = job.run_at
    clock.advance(max(0.0, (job.run_at - clock.now()).total_seconds()))
    core.issuance.wake()

    async def ran() -> bool:
        again = await core.issuance.store.get_job(order_id)
        done = again is None or again.run_at != before
        return done and core.issuance.in_flight == 0  # type: ignore[no-any-return]

    await eventually(ran)


async def test_hours_of_pending_with_outages_give_one_certificate(
        tmp_path: Path, aiohttp_client: Any) -> None:
    # An AD CS certificate manager decides after 6 hours; meanwhile certsrv answers 503
    # for an hour and, for another hour, "(none)" pages with its CA service stopped.
    sim = CertsrvSimulator(tmp_path / "certsrv", mode="pending", auth="basic")
    await sim.start()
    clock = FakeClock()
    try:
        options = certsrv_options(sim, "basic", poll_interval_seconds=600)
        corp = CertsrvConnector("corp", CertsrvSettings.from_options(options, tmp_path, "corp"))
        app, c = await acme_through(aiohttp_client, tmp_path, corp, "adcs", WEB, clock=clock,
                                    acme={"finalize_wait_seconds": 0.2},
                                    jobs={"scan_period_seconds": 0.05})
        core = app[keys.CORE]
        order_url, order = await c.new_order(["approval.example.com"])
        await validate_all(c, order)
        await c.post(order["finalize"], {"csr": b64(make_csr(["approval.example.com"])[0])})
        order_id = order_url.rsplit("/", 1)[1]
        start = clock.now()
        for mode, hours in (("pending", 2), ("down", 1), ("stopped", 1), ("pending", 2)):
            sim.mode = mode
            until = clock.now() + timedelta(hours=hours)
            while clock.now() < until:
                await _next_run(core, clock, order_id)
            _, body = await c.post(order_url)
            assert body["status"] == "processing", (mode, body)
            job = await core.issuance.store.get_job(order_id)
            if mode == "down":  # far more failures in a row than max_attempts (10)
                assert job.attempts > 10 and "HTTP 503" in job.last_error, job
            if mode == "stopped":  # "(none)" pages: still pending, not refused
                assert job.attempts == 0 and "no disposition" in job.last_error, job
        sim.approve(next(iter(sim.requests)))
        await _next_run(core, clock, order_id)
        done = await _wait_valid(c, order_url)
        assert done["status"] == "valid", done
        assert clock.now() - start >= timedelta(hours=6)
        assert len(sim.requests) == 1  # one request at the CA, one certificate
        assert sum(1 for r in sim.requests.values() if r.cert is not None) == 1
    finally:
        await sim.stop()
