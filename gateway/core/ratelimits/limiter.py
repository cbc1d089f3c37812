"""The rate limiter the core calls: which bucket a request draws on, and the refusal.

Two kinds of bucket (see ``docs/policy.md`` for every limit and its default):

* per client address (``requests_per_ip``, ``new_nonces_per_ip``): they guard
  this node and are checked on every request, so they live in this process's
  memory (:class:`LocalBuckets`), one set per node and per worker;
* everything that protects the CA or the names it certifies (new orders, failed
  validations, certificates per registered domain, EST enrollments, new
  accounts): in the store, shared by every process and node. A spend rides in
  the same ``Store.apply`` unit as the change it pays for, so it costs no
  extra commit and a refused spend leaves nothing behind.

A refusal is a ``rateLimited`` GatewayError whose ``retry_after`` is the time
until the bucket has room again, rounded up to whole seconds. Refusals of the
store-kept limits are audited as ``rate_limited``; the per-address ones are not
(a flood of them must not become a flood of audit writes).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from gateway import audit
from gateway.core.ratelimits.bucket import Bucket, LocalBuckets, retry_after
from gateway.core.ratelimits.domains import registered_domain
from gateway.core.ratelimits.settings import Limit, RateLimitSettings
from gateway.errors import ErrorKind, GatewayError
from gateway.model.clock import Clock
from gateway.model.records import Identifier, Order
from gateway.model.store import Op, Spend, Store

# How often buckets that are full again are deleted from the store.
FORGET_PERIOD_SECONDS = 3600.0
# Client addresses remembered with their bucket key (or exemption): parsing costs more.
_SOURCES_CACHED = 10_000


@dataclass(frozen=True)
class Charge:
    """One bucket a request draws on: the limit, whom it counts (for messages), the spend."""

    limit: str
    subject: str
    spend: Spend


@dataclass(frozen=True)
class Requester:
    """Who a refusal is audited against."""

    actor: str
    identifiers: tuple[str, ...] = ()
    profile: str = ""


def period_text(seconds: float) -> str:
    """A period as people say it: "1 week", "3 h", "60 s"."""
    for unit, size in (("week", 604800), ("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            plural = "s" if unit in ("week", "day") and count > 1 else ""
            return f"{count} {unit}{plural}"
    return f"{seconds:g} s"


class RateLimiter:
    """Checks and spends the rate-limit buckets of one gateway process."""

    def __init__(self, settings: RateLimitSettings, store: Store, clock: Clock,
                 trail: audit.AuditTrail) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.trail = trail
        self.local = LocalBuckets()
        self._sources: dict[str, str | None] = {}
        # (limit name, profile) → its bucket: settings never change, and a Bucket is a
        # frozen dataclass whose construction costs more than the check it serves.
        self._buckets: dict[tuple[str, str], Bucket | None] = {}
        self._next_forget = 0.0

    # -- per client address, in memory -------------------------------------------

    def admit_request(self) -> None:
        """Count one ACME or EST request against its address (``requests_per_ip``)."""
        self._admit_source("requests_per_ip")

    def admit_nonce(self) -> None:
        """Count one newNonce request against its address (``new_nonces_per_ip``)."""
        self._admit_source("new_nonces_per_ip")

    def _admit_source(self, name: str) -> None:
        if not self.settings.enabled:
            return
        source = self._source()
        bucket = self._bucket(name, "")
        if source is None or bucket is None:
            return
        wait = self.local.spend(f"{name}:{source}", bucket, 1, self.clock.now().timestamp())
        if wait:
            raise self._error(name, f"address {source}", self.settings.limits[name], wait)

    def _source(self) -> str | None:
        """The bucket key of the requesting address; None when exempt or unknown.

        IPv6 addresses count per /64, the block one host usually has to itself.
        """
        info = audit.CURRENT_REQUEST.get()
        if info is None or not info.source:
            return None
        if info.source not in self._sources:
            if len(self._sources) >= _SOURCES_CACHED:
                self._sources.clear()
            self._sources[info.source] = self._source_key(info.source)
        return self._sources[info.source]

    def _source_key(self, source: str) -> str | None:
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return source  # not an address (a Unix socket path): counted as given
        if any(address in net for net in self.settings.exempt_ips):
            return None
        if address.version == 6:
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        return str(address)

    # -- the buckets each request draws on ---------------------------------------

    def new_account(self) -> list[Charge]:
        """What creating an account costs its address (``new_accounts_per_ip``)."""
        source = self._source() if self.settings.enabled else None
        if source is None:
            return []
        return self._charges("new_accounts_per_ip", "", [(source, f"address {source}")])

    async def new_order(self, account_id: str, profile: str,
                        idents: Sequence[Identifier]) -> list[Charge]:
        """Check the limits on the names, then return what the order itself costs.

        Names are refused while their account has failed validations to spare
        or their registered domain has used up its certificates (both counted
        when they happen); the order then draws on ``new_orders_per_account``.
        """
        if not self.settings.enabled or account_id in self.settings.exempt_accounts:
            return []
        who = Requester(audit.acme_actor(account_id), tuple(i.value for i in idents), profile)
        names = dict.fromkeys(i.value.removeprefix("*.") for i in idents)  # as validated
        failures = [(f"{account_id}:{name}", f"account {account_id} and {name}")
                    for name in names]
        # One store read for both limits; failures come first, so a refusal names
        # the same limit it would if each were checked on its own.
        await self.check([*self._charges("failed_validations_per_account_and_name", profile,
                                         failures),
                          *self._charges("certificates_per_registered_domain", profile,
                                         _domains(idents))], who)
        return self._charges("new_orders_per_account", profile,
                             [(account_id, f"account {account_id}")])

    def validation_failed(self, account_id: str, profile: str, name: str) -> list[Op]:
        """Count a failed validation of ``name`` by the account (checked at its next orders)."""
        if not self.settings.enabled or account_id in self.settings.exempt_accounts:
            return []
        return self._counted("failed_validations_per_account_and_name", profile,
                             [(f"{account_id}:{name}", "")])

    def certificate_issued(self, order: Order) -> list[Op]:
        """Count an ACME certificate once per registered domain it names (checked at newOrder).

        EST certificates are limited per requester instead and are not counted here.
        """
        if not self.settings.enabled or not order.authz_ids \
                or order.account_id in self.settings.exempt_accounts:
            return []
        return self._counted("certificates_per_registered_domain", order.profile,
                             _domains(order.identifiers))

    def enrollment(self, requester: str, profile: str) -> list[Charge]:
        """What a new EST enrollment costs its requester (``est_enrollments_per_requester``)."""
        if not self.settings.enabled or requester in self.settings.exempt_accounts:
            return []
        return self._charges("est_enrollments_per_requester", profile,
                             [(requester, f"EST requester {requester}")])

    def _charges(self, name: str, profile: str, subjects: Sequence[tuple[str, str]],
                 overdraw: bool = False) -> list[Charge]:
        """One charge of one token per (key, subject), unless the limit is off (count 0)."""
        bucket = self._bucket(name, profile)
        if bucket is None:
            return []
        now = self.clock.now()
        return [Charge(name, subject, Spend(f"{name}:{key}", bucket, 1, now, overdraw))
                for key, subject in subjects]

    def _bucket(self, name: str, profile: str) -> Bucket | None:
        """The bucket of limit ``name`` for ``profile`` (None: unlimited), made once."""
        key = (name, profile)
        if key not in self._buckets:
            self._buckets[key] = self.settings.limit(name, profile).bucket()
        return self._buckets[key]

    def _counted(self, name: str, profile: str, subjects: Sequence[tuple[str, str]]) -> list[Op]:
        return [c.spend for c in self._charges(name, profile, subjects, overdraw=True)]

    # -- paying and refusing -----------------------------------------------------

    async def pay(self, charges: Sequence[Charge], ops: Sequence[Op], who: Requester) -> bool:
        """Apply ``ops`` with the charges' spends in one unit.

        A spend refused for want of tokens raises ``rateLimited`` (audited);
        False when the unit failed for another reason (an ``expect`` of ``ops``).
        """
        await self._forget_full_buckets()
        if await self.store.apply([*(c.spend for c in charges), *ops]):
            return True
        await self.check(charges, who)
        return False

    async def check(self, charges: Sequence[Charge], who: Requester) -> None:
        """Refuse (audited) if a charge's bucket has no room now; take nothing."""
        if not charges:
            return
        full = await self.store.buckets_full_at([c.spend.key for c in charges])
        now = self.clock.now()
        for charge in charges:
            spend = charge.spend
            wait = spend.bucket.wait(full.get(spend.key, now).timestamp(), now.timestamp(),
                                     spend.cost)
            if wait:
                error = self._error(charge.limit, charge.subject,
                                    self.settings.limit(charge.limit, who.profile), wait)
                await self.trail.record(audit.RATE_LIMITED, actor=who.actor,
                                        identifiers=who.identifiers, profile=who.profile,
                                        result=error.kind.value, detail=error.detail,
                                        extra={"limit": charge.limit,
                                               "retry_after": error.retry_after})
                raise error

    async def _forget_full_buckets(self) -> None:
        """Now and then, delete the stored buckets that are full again (absent = full)."""
        now = self.clock.now()
        if now.timestamp() < self._next_forget:
            return
        self._next_forget = now.timestamp() + FORGET_PERIOD_SECONDS
        await self.store.forget_full_buckets(now)

    @staticmethod
    def _error(name: str, subject: str, limit: Limit, wait: float) -> GatewayError:
        seconds = retry_after(wait)
        return GatewayError(
            ErrorKind.RATE_LIMITED,
            f"rate limit {name} reached for {subject}: {limit.count} per "
            f"{period_text(limit.period_seconds)}; retry after {seconds} s (the operator can "
            f"raise [rate_limits] {name} or add an exemption)", retry_after=seconds)


def _domains(idents: Sequence[Identifier]) -> list[tuple[str, str]]:
    """(key, subject) of each distinct registered domain among the identifiers."""
    domains = dict.fromkeys(registered_domain(i) for i in idents)
    return [(d, f"registered domain {d}") for d in domains]

