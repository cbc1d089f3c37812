"""Renewal information (RFC 9773) for ACME clients, EST devices and operators.

Every certificate has a suggested renewal window (gateway.core.ari). Two things
move it into the past, so that clients which ask renew at once: revocation, and
an operator's ``acme-gateway renewal advance`` after an incident (a mis-issuance,
a CA key to retire), stored as a :class:`RenewalAdvice` and audited. A newOrder
may name the certificate it ``replaces``; the order is checked against it and
records it, and a certificate is replaced once (until the replacing order fails).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from cryptography import x509

from gateway import audit
from gateway.config import ProfileSettings, Settings
from gateway.core import ari
from gateway.core.policy import name_matches
from gateway.errors import ErrorKind, GatewayError
from gateway.model.clock import Clock
from gateway.model.records import Account, Certificate, Identifier, Order, RenewalAdvice
from gateway.model.store import Insert, Op, Store, Update

# Certificates whose advice is written in one commit by `renewal advance`.
ADVANCE_BATCH = 200


@dataclass(frozen=True)
class Selection:
    """Which certificates an advance moves; every criterion given must hold."""

    ca: str | None = None
    profile: str | None = None
    names: tuple[str, ...] = ()  # globs or "re:" patterns; any identifier may match
    serials: tuple[str, ...] = ()  # hex, any case, leading zeros and colons allowed
    issued_before: datetime | None = None

    def matches(self, cert: Certificate, order: Order) -> bool:
        """Whether this live certificate (and the order it came from) is selected."""
        return ((self.ca is None or cert.ca == self.ca)
                and (self.profile is None or order.profile == self.profile)
                and (not self.serials or cert.serial in self._serials)
                and (self.issued_before is None or cert.not_before < self.issued_before)
                and (not self.names or any(name_matches(p, i.value) for p in self.names
                                           for i in order.identifiers)))

    @cached_property
    def _serials(self) -> frozenset[str]:
        # As stored: lower-case hex without leading zeros (operators paste them otherwise).
        return frozenset(s.replace(":", "").lower().lstrip("0") or "0" for s in self.serials)

    @property
    def empty(self) -> bool:
        """True when nothing narrows the selection (every live certificate)."""
        return self == Selection()


@dataclass(frozen=True)
class Scheduled:
    """A live certificate, the request it came from, and its renewal window."""

    certificate: Certificate
    order: Order
    window: ari.Window

    def due(self, now: datetime) -> bool:
        """Whether its holder should renew now (the window has opened)."""
        return self.window.start <= now

    @property
    def requester(self) -> str:
        """The ACME account id, or the EST requester (``est:...``)."""
        return self.order.account_id

    def summary(self) -> dict[str, Any]:
        """Plain facts for listings (CLI, admin API), times in RFC 3339."""
        cert, window = self.certificate, self.window
        return {"serial": cert.serial, "ca": cert.ca, "profile": self.order.profile,
                "requester": self.requester,
                "identifiers": [i.value for i in self.order.identifiers],
                "not_after": _utc(cert.not_after), "window_start": _utc(window.start),
                "window_end": _utc(window.end), "explanation_url": window.explanation_url}


def _utc(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RenewalService:
    """renewalInfo answers, ``replaces`` checks, operators' advances and renewal lists."""

    settings: Settings
    store: Store
    clock: Clock
    trail: audit.AuditTrail

    async def renewal_info(self, cert_id: str) -> ari.Window:
        """The suggested window of the certificate a certID names (RFC 9773 §4.2)."""
        cert = await self.certificate(cert_id)
        order = await self.store.get_order(cert.order_id)
        return await self.window(cert, order.profile if order else "")

    async def certificate(self, cert_id: str) -> Certificate:
        """The certificate a certID names; notFound when this gateway did not issue it."""
        parsed = ari.parse_cert_id(cert_id)
        cert = await self.store.get_certificate_by_serial(parsed.serial_hex)
        if cert is None or ari.issuer_key_id(
                x509.load_der_x509_certificate(cert.leaf_der)) != parsed.key_id:
            raise GatewayError(ErrorKind.NOT_FOUND,
                               f"no certificate issued here has certID {cert_id!r}")
        return cert

    async def window(self, cert: Certificate, profile_name: str) -> ari.Window:
        """Past once revoked or advanced; otherwise the profile's window for it."""
        if cert.revoked_at is not None:
            return ari.past_window(cert.revoked_at, self.settings.acme.renewal_explanation_url)
        advice = await self.store.get_renewal_advice(cert.id)
        if advice is not None:
            return ari.past_window(advice.advanced_at, advice.explanation_url)
        # A certificate of a profile since removed from the config gets the default span.
        profile = self.settings.profiles.get(profile_name) or ProfileSettings("", "")
        start, end = profile.renewal_window_start, profile.renewal_window_end
        return ari.scheduled_window(cert.not_before, cert.not_after, cert.serial, start, end)

    async def check_replaces(self, account: Account, cert_id: str,
                             identifiers: Sequence[Identifier]) -> str:
        """Refuse a ``replaces`` this order may not claim; return its canonical certID."""
        try:
            cert = await self.certificate(cert_id)
        except GatewayError as exc:
            raise GatewayError(ErrorKind.MALFORMED, f"replaces: {exc.detail}") from None
        if cert.account_id != account.id:
            raise GatewayError(ErrorKind.UNAUTHORIZED,
                               "replaces names a certificate issued to another account")
        old = await self.store.get_order(cert.order_id)
        old_names = {i.value for i in old.identifiers} if old else set()
        if not old_names & {i.value for i in identifiers}:
            raise GatewayError(ErrorKind.MALFORMED,
                               "replaces names a certificate that shares no identifier with "
                               "this order; order at least one of its names, or omit replaces")
        canonical = ari.parse_cert_id(cert_id).text
        newer = await self.store.order_replacing(canonical)
        if newer is not None:
            raise GatewayError(ErrorKind.ALREADY_REPLACED,
                               f"the certificate {cert_id} is already replaced by order "
                               f"{newer.id}; finish that order, or order without replaces")
        return canonical

    async def schedule(self, *, due_only: bool = False,
                       est_only: bool = False) -> list[Scheduled]:
        """Live certificates with their windows (which devices must re-enroll, and when)."""
        now = self.clock.now()
        out = []
        for cert, order in await self.store.live_certificates(now):
            if est_only and not order.account_id.startswith("est:"):
                continue
            item = Scheduled(cert, order, await self.window(cert, order.profile))
            if not due_only or item.due(now):
                out.append(item)
        return out

    async def advance(self, selection: Selection, *, actor: str, reason: str,
                      explanation_url: str = "") -> list[Certificate]:
        """Move the selected live certificates' windows into the past; audited, one by one."""
        if selection.empty:
            raise GatewayError(ErrorKind.MALFORMED,
                               "name what to advance: a CA, profile, names, serials or an "
                               "issued-before date")
        now = self.clock.now()
        url = explanation_url or self.settings.acme.renewal_explanation_url
        chosen = [(c, o) for c, o in await self.store.live_certificates(now)
                  if selection.matches(c, o)]
        for start in range(0, len(chosen), ADVANCE_BATCH):
            ops: list[Op] = []
            for cert, order in chosen[start:start + ADVANCE_BATCH]:
                ops += await self._advice_ops(cert, order, now, actor, reason, url)
            await self.store.apply(ops)
        return [c for c, _ in chosen]

    async def _advice_ops(self, cert: Certificate, order: Order, now: datetime, actor: str,
                          reason: str, url: str) -> list[Op]:
        advice = RenewalAdvice(id=cert.id, advanced_at=now, reason=reason, explanation_url=url)
        known = await self.store.get_renewal_advice(cert.id) is not None
        return [Update(advice) if known else Insert(advice),
                self.trail.event(audit.RENEWAL_ADVANCED, actor=actor,
                                 identifiers=audit.names(order.identifiers),
                                 profile=order.profile, ca=cert.ca, detail=reason,
                                 request_id=order.id, extra={"serial": cert.serial})]
