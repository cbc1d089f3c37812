"""Rate limits through the EST front end: 429, Retry-After and a one-line reason."""

from __future__ import annotations

from dataclasses import replace

from gateway.core.ratelimits.limiter import RateLimiter
from gateway.core.ratelimits.settings import Limit
from gateway.model.clock import FakeClock
from tests.est.support import ALICE, Gateway, b64, ec_key, make_csr, request


def limited(gw: Gateway, name: str, limit: Limit) -> FakeClock:
    """Put one limit in force on the running gateway, on a fake clock the test moves."""
    limiter: RateLimiter = gw.core.limits
    limiter.settings = replace(limiter.settings, limits={**limiter.settings.limits, name: limit})
    limiter.clock = clock = FakeClock()
    return clock


async def enroll(gw: Gateway, csr: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    status, headers, body = await request(gw, "POST", "/basic/simpleenroll",
                                          b64(csr or make_csr(ec_key())), ALICE)
    return status, dict(headers), body


async def test_est_enrollments_per_requester(gw: Gateway) -> None:
    """Two enrollments a day for alice: the third waits half a day; a re-POST costs nothing."""
    clock = limited(gw, "est_enrollments_per_requester", Limit(2, 86400))
    first = make_csr(ec_key())
    assert (await enroll(gw, first))[0] == 200
    assert (await enroll(gw))[0] == 200
    assert (await enroll(gw, first))[0] == 200  # the same request again: not a new enrollment
    status, headers, body = await enroll(gw)
    assert status == 429
    assert headers["Retry-After"] == "43200"
    assert headers["Content-Type"].startswith("text/plain")
    assert b"est_enrollments_per_requester" in body and b"est:user:alice" in body
    assert body.count(b"\n") == 1
    clock.advance(43200)
    assert (await enroll(gw))[0] == 200


async def test_requests_per_ip_on_est(gw: Gateway) -> None:
    clock = limited(gw, "requests_per_ip", Limit(2, 20))
    for _ in range(2):
        assert (await request(gw, "GET", "/cacerts"))[0] == 200
    status, headers, body = await request(gw, "GET", "/cacerts")
    assert (status, headers["Retry-After"]) == (429, "10")
    assert b"requests_per_ip" in body
    clock.advance(10)
    assert (await request(gw, "GET", "/cacerts"))[0] == 200
