"""CA jobs: configurable retry and poll backoff, restarts, and never running a job twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from connectors.base import IssueRequest, IssueResult
from gateway import keys
from gateway.app import create_app
from gateway.core.service import Core
from gateway.model.clock import FakeClock
from tests.acme.support import FakeValidator, eventually, make_settings
from tests.acmeclient import AcmeClient, make_csr
from tests.fakes.scripted_ca import ScriptedCA
from tests.policy.support import PROFILES, finalize, ready_order

JOBS = {"retry_base_seconds": 10, "retry_cap_seconds": 15, "max_attempts": 3,
        "poll_base_seconds": 7, "poll_cap_seconds": 60, "scan_period_seconds": 0.02}


async def _start(aiohttp_client: Any, tmp_path: Any, ca: ScriptedCA,
                 clock: FakeClock) -> tuple[Any, Core, AcmeClient]:
    settings = make_settings(tmp_path, profiles=PROFILES, jobs=JOBS,
                             acme={"finalize_wait_seconds": 0.5, "retry_after_seconds": 1})
    app = create_app(settings, clock=clock, validator=FakeValidator(), connectors={"local": ca})
    http = await aiohttp_client(app)
    c = AcmeClient(http.session, str(http.make_url("/acme/directory")))
    await c.start()
    await c.register()
    return http, app[keys.CORE], c


async def _finalized(aiohttp_client: Any, tmp_path: Any, ca: ScriptedCA,
                     clock: FakeClock) -> tuple[Core, AcmeClient, dict[str, Any], dict[str, Any]]:
    """A gateway on ``ca`` with one order for a.example.com finalized: core, client, order, body."""
    _, core, c = await _start(aiohttp_client, tmp_path, ca, clock)
    order = await ready_order(c, ["a.example.com"], "default")
    _, body = await finalize(c, order, make_csr(["a.example.com"])[0])
    return core, c, order, body


async def _order_status(c: AcmeClient, url: str, status: str) -> None:
    async def reached() -> bool:
        _, body = await c.post(url)
        return bool(body["status"] == status)

    await eventually(reached)


async def test_transient_failures_retry_with_configured_backoff(aiohttp_client: Any,
                                                                tmp_path: Any) -> None:
    clock, ca = FakeClock(), ScriptedCA("fail")
    _, core, c = await _start(aiohttp_client, tmp_path, ca, clock)
    order = await ready_order(c, ["a.example.com"], "default")
    resp, body = await finalize(c, order, make_csr(["a.example.com"])[0])
    assert body["status"] == "processing" and resp.headers["Retry-After"] == "1"
    order_id = order["url"].rsplit("/", 1)[1]
    for attempt, delay in ((1, 10), (2, 15)):  # base 10, then 20 capped at 15
        job = await core.issuance.store.get_job(order_id)
        assert job is not None and job.attempts == attempt
        assert job.run_at == clock.now() + timedelta(seconds=delay)
        clock.advance(delay)
        core.issuance.wake()

        async def tried(n: int = attempt + 1) -> bool:
            return len(ca.issue_calls) == n

        await eventually(tried)
    await _order_status(c, order["url"], "invalid")
    _, body = await c.post(order["url"])
    assert "could not issue after 3 attempt(s)" in body["error"]["detail"]
    assert ca.issue_calls == [order_id] * 3


async def test_pending_ca_is_polled_with_backoff(aiohttp_client: Any, tmp_path: Any) -> None:
    clock, ca = FakeClock(), ScriptedCA("pending", "pending", "issue")
    _, core, c = await _start(aiohttp_client, tmp_path, ca, clock)
    order = await ready_order(c, ["a.example.com"], "default")
    resp, body = await finalize(c, order, make_csr(["a.example.com"])[0])
    assert body["status"] == "processing"
    order_id = order["url"].rsplit("/", 1)[1]
    for attempt, delay in ((1, 7), (2, 14)):
        job = await core.issuance.store.get_job(order_id)
        # Polls spend the waiting budget, never the error budget.
        assert job is not None and job.state == "waiting" and job.attempts == 0
        assert job.extra["polls"] == attempt
        assert job.run_at == clock.now() + timedelta(seconds=delay)
        clock.advance(delay)
        core.issuance.wake()

        async def polled(n: int = attempt) -> bool:
            return len(ca.poll_calls) == n

        await eventually(polled)
    await _order_status(c, order["url"], "valid")
    assert ca.issue_calls == [order_id] and ca.poll_calls == [order_id, order_id]
    # A repeated finalize of a valid order answers the order, not an error.
    resp, again = await finalize(c, order, make_csr(["a.example.com"])[0])
    assert resp.status == 200 and again["status"] == "valid"
    assert again["certificate"] == (await c.post(order["url"]))[1]["certificate"]


async def test_repeated_finalize_while_processing_returns_the_order(aiohttp_client: Any,
                                                                     tmp_path: Any) -> None:
    clock, ca = FakeClock(), ScriptedCA("pending")
    _, core, c = await _start(aiohttp_client, tmp_path, ca, clock)
    order = await ready_order(c, ["a.example.com"], "default")
    csr = make_csr(["a.example.com"])[0]
    for _ in range(3):
        resp, body = await finalize(c, order, csr)
        assert resp.status == 200 and body["status"] == "processing"
        assert resp.headers["Retry-After"] == "1"
    assert len(ca.issue_calls) == 1


async def test_jobs_survive_a_restart_and_run_once(aiohttp_client: Any, tmp_path: Any) -> None:
    clock, ca = FakeClock(), ScriptedCA("pending", "issue")
    http, core, c = await _start(aiohttp_client, tmp_path, ca, clock)
    order = await ready_order(c, ["a.example.com"], "default")
    await finalize(c, order, make_csr(["a.example.com"])[0])
    order_id = order["url"].rsplit("/", 1)[1]
    await http.close()  # the app stops; the job row stays
    clock.advance(3600)
    http, core, _ = await _start(aiohttp_client, tmp_path, ca, clock)
    c.session = http.session
    c.directory_url = str(http.make_url("/acme/directory"))
    await c.start()
    c.kid = str(http.make_url(f"/acme/acct/{c.kid.rsplit('/', 1)[1]}"))  # type: ignore[union-attr]
    await _order_status(c, str(http.make_url(f"/acme/order/{order_id}")), "valid")
    assert ca.issue_calls == [order_id] and ca.poll_calls == [order_id]
    assert await core.issuance.store.get_job(order_id) is None
    issued = await core.audit.store.audit_rows(0, 1000)
    assert [r["event"] for r in issued].count("issued") == 1


async def test_ca_rejection_ends_invalid_and_is_audited(aiohttp_client: Any,
                                                         tmp_path: Any) -> None:
    clock, ca = FakeClock(), ScriptedCA("reject")
    _, core, c = await _start(aiohttp_client, tmp_path, ca, clock)
    order = await ready_order(c, ["a.example.com"], "default")
    resp, body = await finalize(c, order, make_csr(["a.example.com"])[0])
    assert body["status"] == "invalid"
    assert "denied by CA policy module" in body["error"]["detail"]
    rows = await core.audit.store.audit_rows(0, 1000)
    [failed] = [r for r in rows if r["event"] == "failed"]
    assert failed["result"] == "unauthorized" and "denied by CA" in failed["detail"]


async def _run_due(core: Core, clock: FakeClock, ca: ScriptedCA, seconds: float) -> None:
    """Advance the clock, wake the scanner and wait until the CA was called once more."""
    calls = len(ca.issue_calls) + len(ca.poll_calls)
    clock.advance(seconds)
    core.issuance.wake()

    async def called() -> bool:
        done = core.issuance.in_flight == 0  # the job's new state is stored
        return done and len(ca.issue_calls) + len(ca.poll_calls) == calls + 1

    await eventually(called)


async def test_hours_of_pending_with_outages_end_in_one_certificate(aiohttp_client: Any,
                                                                    tmp_path: Any) -> None:
    # An officer approves after ~9 hours; the CA is down five times meanwhile, more
    # than max_attempts (3) in a row: the held request survives every outage.
    steps = ["pending", *["pending", "fail"] * 3, "fail", "fail", "pending", "issue"]
    clock, ca = FakeClock(), ScriptedCA(*steps, retry_after=3600)
    core, c, order, _ = await _finalized(aiohttp_client, tmp_path, ca, clock)
    order_id = order["url"].rsplit("/", 1)[1]
    while len(ca.issue_calls) + len(ca.poll_calls) < len(steps):
        job = await core.issuance.store.get_job(order_id)
        assert job is not None and job.run_at is not None
        await _run_due(core, clock, ca, (job.run_at - clock.now()).total_seconds())
    await _order_status(c, order["url"], "valid")
    assert ca.issue_calls == [order_id]  # submitted once, polled ever after
    assert len(ca.ca.issued) == 1
    assert core.issuance.health.is_up("local")


async def test_an_outage_after_a_pending_answer_backs_off_from_the_base(
        aiohttp_client: Any, tmp_path: Any) -> None:
    clock, ca = FakeClock(), ScriptedCA("pending", "fail", "pending")
    core, c, order, _ = await _finalized(aiohttp_client, tmp_path, ca, clock)
    order_id = order["url"].rsplit("/", 1)[1]
    await _run_due(core, clock, ca, 7)  # the poll meets the outage
    job = await core.issuance.store.get_job(order_id)
    assert job is not None and job.attempts == 1
    assert job.run_at == clock.now() + timedelta(seconds=10)  # retry_base, not a poll count


async def test_an_open_circuit_defers_jobs_without_calling_the_ca(aiohttp_client: Any,
                                                                  tmp_path: Any) -> None:
    clock, ca = FakeClock(), ScriptedCA("fail")
    _, core, c = await _start(aiohttp_client, tmp_path, ca, clock)
    for _ in range(5):  # the default breaker_threshold
        core.issuance.health.failed("local", "HTTP 503")
    order = await ready_order(c, ["a.example.com"], "default")
    _, body = await finalize(c, order, make_csr(["a.example.com"])[0])
    assert body["status"] == "processing" and ca.issue_calls == []
    job = await core.issuance.store.get_job(order["url"].rsplit("/", 1)[1])
    assert job is not None and job.attempts == 0
    assert job.run_at == core.issuance.health.blocked_until("local")


async def test_a_wait_beyond_the_profile_maximum_ends_the_order(aiohttp_client: Any,
                                                                 tmp_path: Any) -> None:
    clock, ca = FakeClock(), ScriptedCA("pending", retry_after=3600)
    core, c, order, _ = await _finalized(aiohttp_client, tmp_path, ca, clock)
    clock.advance(169 * 3600)  # the default max_wait_hours is 168
    core.issuance.wake()
    await _order_status(c, order["url"], "invalid")
    _, body = await c.post(order["url"])
    assert "did not decide within 168 hour(s)" in body["error"]["detail"]
    assert "cancel it in the CA" in body["error"]["detail"]


async def test_a_misconfigured_profile_fails_its_order_but_not_the_ca(aiohttp_client: Any,
                                                                      tmp_path: Any) -> None:
    clock, ca = FakeClock(), ScriptedCA("misconfigured")
    core, c, order, body = await _finalized(aiohttp_client, tmp_path, ca, clock)
    assert body["status"] == "invalid" and "unknown certificate profile" in body["error"]["detail"]
    assert core.issuance.health.is_up("local") and ca.issue_calls == [order["url"].rsplit("/")[-1]]


class RecordingCA(ScriptedCA):
    """A scripted CA that keeps every request it was handed."""

    def __init__(self, *steps: str) -> None:
        super().__init__(*steps)
        self.requests: list[IssueRequest] = []

    async def issue(self, request: IssueRequest) -> IssueResult:
        self.requests.append(request)
        return await super().issue(request)


async def test_only_the_first_run_hands_the_parsed_csr_and_says_it_is_first(
        aiohttp_client: Any, tmp_path: Any) -> None:
    """Finalize's run passes its parsed CSR; a retry from the store parses the stored one
    and lets the CA look for what the first attempt may have left there."""
    clock, ca = FakeClock(), RecordingCA("fail", "issue")
    core, c, order, body = await _finalized(aiohttp_client, tmp_path, ca, clock)
    assert body["status"] == "processing"
    await _run_due(core, clock, ca, JOBS["retry_base_seconds"])
    await _order_status(c, order["url"], "valid")
    first, retry = ca.requests
    assert first.first_submission and first.csr is not None and first.csr_key is not None
    assert first.csr.public_bytes(Encoding.DER) == first.csr_der
    assert not retry.first_submission and retry.csr is None and retry.csr_der == first.csr_der
