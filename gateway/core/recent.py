"""Certificates this process has just stored, kept for the download that follows.

An ACME client fetches its certificate right after the order turns valid
(RFC 8555 §7.4.2), nearly always from the process that issued it. What a
download serves of a certificate (its owner, leaf and stored chain) never
changes once stored, so a copy may be served without reading the store again.
Copies are dropped after ``ttl``, so a certificate the store has since purged
(retention) is not served from here; another process or node, which has no
copy, reads the store as before.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

from gateway.model.clock import Clock
from gateway.model.records import Certificate

DEFAULT_SIZE = 1024
DEFAULT_TTL = timedelta(minutes=10)


class RecentCertificates:
    """Up to ``size`` certificates stored by this process in the last ``ttl``, by id."""

    def __init__(self, clock: Clock, size: int = DEFAULT_SIZE,
                 ttl: timedelta = DEFAULT_TTL) -> None:
        self.clock = clock
        self.size = size
        self.ttl = ttl
        self._kept: OrderedDict[str, tuple[datetime, Certificate]] = OrderedDict()

    def add(self, cert: Certificate) -> None:
        """Keep ``cert``, which the store has just committed; the oldest copy goes when full."""
        self._kept[cert.id] = (self.clock.now() + self.ttl, cert)
        if len(self._kept) > self.size:
            self._kept.popitem(last=False)

    def get(self, cert_id: str) -> Certificate | None:
        """The kept copy of a certificate, or None when there is none or it is too old."""
        found = self._kept.get(cert_id)
        if found is None:
            return None
        if self.clock.now() >= found[0]:
            del self._kept[cert_id]
            return None
        return found[1]
