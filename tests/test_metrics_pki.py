"""Metrics for alerting: issuance, orders, validations, CA calls, expiry, jobs, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from connectors.base import CAUnavailable, Issued, IssueRequest, IssueResult, Pending
from gateway import audit
from gateway.app import create_app
from gateway.errors import ErrorKind
from gateway.metrics_pki import MeteredConnector, PkiMetrics, protocol_of
from gateway.model.clock import FakeClock
from gateway.model.records import AuditEvent, CertificateQuery
from gateway.validation import ValidationFailure
from tests.acme.flow import issue
from tests.acme.support import FakeValidator, eventually
from tests.acme.test_rate_limits import OFF
from tests.acmeclient import AcmeClient, make_csr
from tests.policy.support import PolicyGateway, finalize, ready_order, settings_for

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _event(kind: str, **fields: Any) -> AuditEvent:
    return AuditEvent(event=kind, at=AT, **fields)


@pytest.mark.parametrize(("event", "sample", "labels"), [
    (_event(audit.ISSUED, actor="acme:a1", ca="local", profile="web"),
     "acme_gateway_certificates_issued_total", {"ca": "local", "profile": "web",
                                                "protocol": "acme"}),
    (_event(audit.ISSUED, actor="est:user:r1", ca="adcs", profile="dev"),
     "acme_gateway_orders_finished_total", {"status": "valid", "reason": "issued"}),
    (_event(audit.FAILED), "acme_gateway_orders_finished_total",
     {"status": "invalid", "reason": "failed"}),
    (_event(audit.REJECTED), "acme_gateway_orders_finished_total",
     {"status": "invalid", "reason": "rejected"}),
    (_event(audit.VALIDATED, result="dns", extra={"challenge": "dns-01"}),
     "acme_gateway_validations_total", {"type": "dns-01", "outcome": "dns"}),
    (_event(audit.RATE_LIMITED, extra={"limit": "new_orders_per_account"}),
     "acme_gateway_rate_limit_refusals_total", {"limit": "new_orders_per_account"}),
    (_event(audit.POLICY_REFUSED, profile="strict"), "acme_gateway_policy_refusals_total",
     {"profile": "strict"}),
    (_event(audit.REVOKED, ca="local"), "acme_gateway_certificates_revoked_total",
     {"ca": "local"}),
])
def test_each_recorded_decision_is_counted(event: AuditEvent, sample: str,
                                           labels: dict[str, str]) -> None:
    registry = CollectorRegistry()
    metrics = PkiMetrics(registry)
    metrics.observe(event)
    metrics.observe(_event(audit.REQUESTED))  # not counted by any of these
    assert registry.get_sample_value(sample, labels) == 1.0


def test_protocols_of_requesters() -> None:
    assert [protocol_of(a) for a in ("acme:x", "est:cert:ab", "scep:t", "cli:bob", "")] == [
        "acme", "est", "scep", "other", "other"]


class _CA:
    """A connector whose answers a test scripts."""

    name = "scripted"

    def __init__(self, *answers: IssueResult | Exception) -> None:
        self.answers = list(answers)

    async def issue(self, request: IssueRequest) -> IssueResult:
        return self._next()

    async def poll(self, ref: str) -> IssueResult:
        return self._next()

    def _next(self) -> IssueResult:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_ca_calls_are_timed_by_outcome() -> None:
    registry = CollectorRegistry()
    ca = _CA(Pending("ref-1"), CAUnavailable("down"), Issued(b"leaf", ()))
    metered = MeteredConnector("corp", ca, PkiMetrics(registry))  # type: ignore[arg-type]
    assert isinstance(await metered.issue(None), Pending)  # type: ignore[arg-type]
    with pytest.raises(CAUnavailable):
        await metered.poll("ref-1")
    assert isinstance(await metered.poll("ref-1"), Issued)
    assert metered.name == "scripted"  # everything else reaches the connector
    count = "acme_gateway_ca_call_duration_seconds_count"
    for operation, outcome in (("issue", "pending"), ("poll", "error"), ("poll", "issued")):
        assert registry.get_sample_value(count, {"ca": "corp", "operation": operation,
                                                 "outcome": outcome}) == 1.0


def test_tallied_counts_and_times_show_once_folded_as_observed_directly() -> None:
    """A tallying PkiMetrics folds into exactly the samples direct observation gives."""
    events = [_event(audit.ISSUED, actor="acme:a1", ca="local", profile="web"),
              _event(audit.VALIDATED, result="ok", extra={"challenge": "http-01"}),
              _event(audit.VALIDATED, result="ok", extra={"challenge": "http-01"})]
    times = [0.0004, 0.01, 0.05, 0.07, 3.0, 61.0]
    registries = {}
    for tally in (False, True):
        registry = registries[tally] = CollectorRegistry()
        metrics = PkiMetrics(registry, tally=tally)
        for _ in range(2):  # two scrapes: a fold starts the tally over
            for event in events:
                metrics.observe(event)
            for seconds in times:
                metrics.observe_ca_call("local", "issue", "issued", seconds)
            if tally:
                issued = ("acme_gateway_certificates_issued_total",
                          {"ca": "local", "profile": "web", "protocol": "acme"})
                before = registry.get_sample_value(*issued) or 0.0
                metrics.fold()
                assert registry.get_sample_value(*issued) == before + 1

    def samples(registry: CollectorRegistry) -> list[tuple[str, str, float]]:
        return sorted((s.name, repr(sorted(s.labels.items())), s.value)
                      for family in registry.collect()
                      for s in family.samples if not s.name.endswith("_created"))
    assert samples(registries[True])  # the histogram and counters are there
    assert samples(registries[True]) == samples(registries[False])


async def _scrape(http: Any) -> str:
    resp = await http.get("/metrics")
    assert resp.status == 200
    return str(await resp.text())


async def test_a_scrape_shows_what_the_gateway_did(aiohttp_client: Any, tmp_path: Any) -> None:
    clock, validator = FakeClock(), FakeValidator()
    settings = settings_for(tmp_path, rate_limits={**OFF, "new_orders_per_account": 3})
    gw = PolicyGateway(await aiohttp_client(create_app(settings, validator=validator,
                                                       clock=clock)), validator)
    c: AcmeClient = await gw.client()
    await issue(c, ["m1.example.com"])
    order = await ready_order(c, ["held.example.com"], "manual")  # held for approval
    await finalize(c, order, make_csr(["held.example.com"])[0])
    validator.failure = ValidationFailure(ErrorKind.CONNECTION, "nothing listens")
    _, bad = await c.new_order(["bad.example.com"])
    authz = (await c.post(bad["authorizations"][0]))[1]
    await c.post(authz["challenges"][0]["url"], {})
    await eventually(lambda: _has(gw, "outcome=\"connection\""))
    resp, _ = await c.post(c.directory["newOrder"],
                           {"identifiers": [{"type": "dns", "value": "more.example.com"}]})
    assert resp.status == 429
    text = await _scrape(gw.http)
    for line in (
        'acme_gateway_certificates_issued_total{ca="local",profile="default",protocol="acme"} '
        '1.0',
        'acme_gateway_orders_finished_total{reason="issued",status="valid"} 1.0',
        'acme_gateway_validations_total{outcome="ok",type="http-01"} 2.0',
        'acme_gateway_rate_limit_refusals_total{limit="new_orders_per_account"} 1.0',
        'acme_gateway_jobs_waiting{state="approval"} 1.0',
        'acme_gateway_certificates_expiring{within_days="30"} 0.0',
        'acme_gateway_ca_call_duration_seconds_count{ca="local",operation="issue",'
        'outcome="issued"} 1.0',
    ):
        assert line in text, line
    [cert] = await gw.core.inventory.find(CertificateQuery())
    clock.current = cert.certificate.not_after - timedelta(days=3)
    text = await _scrape(gw.http)
    assert [ln for ln in text.splitlines() if "expiring{" in ln] == [
        'acme_gateway_certificates_expiring{within_days="7"} 1.0',
        'acme_gateway_certificates_expiring{within_days="30"} 1.0']


async def _has(gw: PolicyGateway, fragment: str) -> bool:
    return fragment in await _scrape(gw.http)

