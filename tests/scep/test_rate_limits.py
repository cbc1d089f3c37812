"""SCEP enrollments draw on the EST requester limit; a resent request costs nothing."""

from __future__ import annotations

from dataclasses import replace

from gateway.core.ratelimits.limiter import RateLimiter
from gateway.core.ratelimits.settings import Limit
from gateway.model.clock import FakeClock
from gateway.scep import message as m
from tests.scep.client import scep_csr
from tests.scep.support import PASSWORD, ScepGateway


async def test_enrollments_per_requester(gw: ScepGateway) -> None:
    limiter: RateLimiter = gw.core.limits
    limiter.settings = replace(limiter.settings, enabled=True, limits={
        **limiter.settings.limits, "est_enrollments_per_requester": Limit(2, 86400)})
    limiter.clock = clock = FakeClock()
    devices = [gw.device() for _ in range(3)]
    csrs = [scep_csr(d.key, f"n{i}.routers.example.net", PASSWORD)
            for i, d in enumerate(devices)]
    for i in (0, 1, 0):  # the third is the first one sent again
        assert (await devices[i].enroll(csrs[i], f"tx-{i}")).status == m.SUCCESS
    refused = await devices[2].enroll(csrs[2], "tx-2")
    assert (refused.status, refused.fail_info) == (m.FAILURE, m.BAD_REQUEST)
    assert "est_enrollments_per_requester" in refused.fail_text
    assert "scep:label:routers" in refused.fail_text
    clock.advance(43200)
    assert (await devices[2].enroll(csrs[2], "tx-2b")).status == m.SUCCESS
