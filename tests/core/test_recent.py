"""Certificates kept for the download that follows their issuance."""

from __future__ import annotations

from datetime import timedelta

from gateway.core.recent import RecentCertificates
from gateway.model.clock import FakeClock
from gateway.model.records import Certificate


def _cert(cert_id: str, clock: FakeClock) -> Certificate:
    now = clock.now()
    return Certificate(id=cert_id, order_id="o", account_id="a", serial="1", leaf_der=b"",
                       chain_pem="", not_before=now, not_after=now, spki_sha256="", ca="local")


def test_a_kept_certificate_is_served_until_its_time_runs_out() -> None:
    clock = FakeClock()
    recent = RecentCertificates(clock, ttl=timedelta(seconds=60))
    cert = _cert("c1", clock)
    recent.add(cert)
    assert recent.get("c1") is cert and recent.get("other") is None
    clock.advance(59)
    assert recent.get("c1") is cert
    clock.advance(1)
    assert recent.get("c1") is None  # from then on the store answers (it may have purged it)


def test_the_oldest_copy_goes_first_when_full() -> None:
    clock = FakeClock()
    recent = RecentCertificates(clock, size=2)
    for name in ("c1", "c2", "c3"):
        recent.add(_cert(name, clock))
    assert recent.get("c1") is None
    assert [c.id for c in (recent.get("c2"), recent.get("c3")) if c] == ["c2", "c3"]
