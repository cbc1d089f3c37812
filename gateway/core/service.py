"""The issuance core: one object that front ends call, wiring the services together."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from connectors.base import Connector
from gateway import audit
from gateway.config import Settings
from gateway.core.accounts import AccountService
from gateway.core.anchoring import AnchorWriter
from gateway.core.approvals import ApprovalService
from gateway.core.ca_health import CAHealth, HealthProber
from gateway.core.chains import CertificateChains
from gateway.core.eab import EabService
from gateway.core.est import EstService
from gateway.core.inventory import InventoryService
from gateway.core.issuance import IssuanceService
from gateway.core.orders import OrderService
from gateway.core.polls import PollService
from gateway.core.profiles import ProfilePolicy
from gateway.core.ratelimits.limiter import RateLimiter
from gateway.core.readiness import StoreProbe
from gateway.core.renewals import RenewalService
from gateway.core.retention import Pruner
from gateway.core.role import ProcessRole
from gateway.core.scep import ScepService
from gateway.core.validations import ValidationRunner
from gateway.model.clock import Clock, SystemClock
from gateway.model.store import Store
from gateway.validation import Validator

log = logging.getLogger("gateway.core")


class Core:
    """Accounts, orders, validations and issuance behind one facade.

    Front ends hold a Core and call its services; they never see the store,
    the validator or the connectors.
    """

    def __init__(self, settings: Settings, store: Store, validator: Validator,
                 connectors: Mapping[str, Connector], clock: Clock | None = None,
                 role: ProcessRole | None = None) -> None:
        self.settings = settings
        self.role = role or ProcessRole()
        self.clock = clock or SystemClock()
        self.connectors = connectors
        self.audit = audit.AuditTrail(store, self.clock)
        self.profiles = ProfilePolicy(settings, store, self.audit)
        self.limits = RateLimiter(settings.rate_limits, store, self.clock, self.audit)
        self.eab = EabService(settings, store, self.clock, self.audit)
        self.approvals = ApprovalService(settings, store, self.clock, self.audit)
        self.accounts = AccountService(settings.acme, store, self.clock, self.eab, self.audit,
                                       limits=self.limits)
        self.renewals = RenewalService(settings, store, self.clock, self.audit)
        self.orders = OrderService(settings, store, self.clock, trail=self.audit,
                                   profiles=self.profiles, limits=self.limits,
                                   renewals=self.renewals)
        self.validations = ValidationRunner(settings, store, self.orders, validator)
        self.orders.on_challenge = self.validations.start
        jobs = settings.jobs
        self.health = CAHealth(connectors, self.clock, jobs.breaker_threshold,
                               jobs.breaker_cooldown_seconds)
        self.prober = HealthProber(connectors, self.health, jobs.health_probe_seconds)
        self.issuance = IssuanceService(settings, store, self.clock, connectors, self.orders,
                                        validator, trail=self.audit, profiles=self.profiles,
                                        approvals=self.approvals, role=self.role,
                                        health=self.health, limits=self.limits)
        self.approvals.on_approved = self.issuance.wake
        self.polls = PollService(settings, self.orders, self.issuance, self.role)
        self.chains = CertificateChains(connectors)
        self.inventory = InventoryService(store, self.clock, self.audit, self.issuance.revocation,
                                          settings.audit.max_validity_days)
        self.est = EstService(settings, store, self.clock, connectors, self.issuance)
        self.scep = ScepService(store, self.clock, self.est, self.audit)
        self.anchors = AnchorWriter(settings, store, self.clock)
        self.pruner = Pruner(settings.retention, store, self.clock)
        self.database = StoreProbe(store)

    async def start(self) -> None:
        """Resume validations and CA jobs left from a previous run (the primary process).

        The primary also anchors the audit chain and prunes finished records; other
        processes do neither.
        """
        if self.role.primary:
            await self.anchors.start()
            self.pruner.start()
            resumed = await self.validations.resume()
            if resumed:
                log.info("resumed %d validation(s) in flight", resumed)
            if self.role.other_nodes:  # a node that dies leaves its validations to the others
                self.validations.watch_orphans(self.settings.jobs.claim_seconds)
        await self.issuance.start()
        self.prober.start()

    async def stop(self) -> None:
        """Stop background work; anything unfinished resumes on the next start."""
        await self.prober.stop()
        await self.pruner.stop()
        await self.validations.stop()
        await self.issuance.stop()
        await self.approvals.aclose()
        await self.anchors.stop()  # last: it anchors the final head

    def ready(self) -> dict[str, dict[str, Any]]:
        """Each CA's state as last probed or called: up or down, since when, why, jobs waiting."""
        return self.health.report(self.issuance.jobs_waiting())
