"""Per-CA health: the circuit breaker, the prober, /readyz and /metrics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from connectors.base import CAUnavailable
from gateway import keys
from gateway.app import create_app
from gateway.core.ca_health import CAHealth, HealthProber
from gateway.model.clock import FakeClock
from tests.acme.support import FakeValidator, make_settings
from tests.fakes.scripted_ca import ScriptedCA


def test_the_circuit_opens_after_the_threshold_and_an_answer_closes_it() -> None:
    clock = FakeClock()
    health = CAHealth(["corp"], clock, threshold=3, cooldown_seconds=60)
    for _ in range(2):
        health.failed("corp", "HTTP 503")
    assert health.blocked_until("corp") is None and not health.is_up("corp")
    health.failed("corp", "HTTP 503")
    assert health.blocked_until("corp") == clock.now() + timedelta(seconds=60)
    clock.advance(61)
    assert health.blocked_until("corp") is None  # the probe may go
    health.answered("corp")
    state = health.states["corp"]
    assert state.up and state.failures == 0 and state.open_until is None


class _Flaky(ScriptedCA):
    """A CA whose health check fails while ``down``."""

    down = False

    async def check(self) -> None:
        if self.down:
            raise CAUnavailable("certsrv answered HTTP 503")


async def test_the_prober_marks_a_ca_down_and_up_again() -> None:
    clock, ca = FakeClock(), _Flaky()
    health = CAHealth(["corp"], clock, threshold=2, cooldown_seconds=60)
    prober = HealthProber({"corp": ca}, health, period=0)
    ca.down = True
    await prober.probe_once()
    assert health.report({"corp": 3})["corp"] == {
        "state": "down", "down_since": clock.now().isoformat(),
        "last_error": "certsrv answered HTTP 503", "consecutive_failures": 1,
        "circuit_open_until": None, "jobs_waiting": 3}
    clock.advance(30)
    await prober.probe_once()  # a second failure in a row opens the circuit
    assert health.blocked_until("corp") == clock.now() + timedelta(seconds=60)
    ca.down = False
    await prober.probe_once()
    assert health.report({})["corp"]["state"] == "up" and health.blocked_until("corp") is None


async def test_readyz_and_metrics_show_each_ca(aiohttp_client: Any, tmp_path: Any) -> None:
    ca = _Flaky()
    settings = make_settings(tmp_path, jobs={"health_probe_seconds": 0})
    app = create_app(settings, validator=FakeValidator(), connectors={"local": ca})
    http = await aiohttp_client(app)
    resp = await http.get("/readyz")
    assert resp.status == 200 and (await resp.json())["cas"]["local"]["state"] == "up"
    ca.down = True
    await app[keys.CORE].prober.probe_once()
    resp = await http.get("/readyz")
    body = await resp.json()
    assert resp.status == 503 and body["status"] == "degraded"
    assert body["cas"]["local"]["last_error"] == "certsrv answered HTTP 503"
    assert body["cas"]["local"]["down_since"]
    text = await (await http.get("/metrics")).text()
    assert 'acme_gateway_ca_up{ca="local"} 0.0' in text
    assert 'acme_gateway_ca_jobs_waiting{ca="local"} 0.0' in text
    assert 'acme_gateway_ca_consecutive_failures{ca="local"} 1.0' in text
