"""The ``[rate_limits]`` table and its per-profile overrides ``[profiles.NAME.rate_limits]``.

Each limit is ``NAME = COUNT`` (per its default period) or ``NAME = { count =
COUNT, period_seconds = SECONDS }``; a count of 0 means unlimited. The limits
on accounts, names, registered domains and EST requesters may be overridden per
profile (the profile an order or EST label uses); the per-IP limits guard the
gateway itself and are global only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.model.buckets import Bucket

if TYPE_CHECKING:
    from gateway.config_table import Table

HOUR = 3600.0
DAY = 24 * HOUR


@dataclass(frozen=True)
class Limit:
    """At most ``count`` events per ``period_seconds`` (as a bucket that refills evenly)."""

    count: int
    period_seconds: float

    def bucket(self) -> Bucket | None:
        """The token bucket of this limit; None when unlimited (count 0)."""
        return Bucket(self.count, self.period_seconds) if self.count else None


# Limits that a profile may override: they protect the CA and the names it certifies.
PROFILE_LIMITS: Mapping[str, Limit] = {
    "new_orders_per_account": Limit(300, 3 * HOUR),
    "failed_validations_per_account_and_name": Limit(5, HOUR),
    # Far above the public web's 50: behind an enterprise CA most names share one
    # registered domain (corp.example), and the per-account limit stops runaway clients.
    "certificates_per_registered_domain": Limit(10_000, 7 * DAY),
    "est_enrollments_per_requester": Limit(100, DAY),
}
# Limits per client address: global only.
IP_LIMITS: Mapping[str, Limit] = {
    "new_accounts_per_ip": Limit(10, 3 * HOUR),
    "new_nonces_per_ip": Limit(1200, 60.0),
    "requests_per_ip": Limit(6000, 60.0),
}
DEFAULTS: Mapping[str, Limit] = {**PROFILE_LIMITS, **IP_LIMITS}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class RateLimitSettings:
    """Every limit in force, the per-profile overrides and the exemptions."""

    enabled: bool = True
    limits: Mapping[str, Limit] = field(default_factory=lambda: dict(DEFAULTS))
    # profile name → limit name → the limit that replaces the global one
    profiles: Mapping[str, Mapping[str, Limit]] = field(default_factory=dict)
    exempt_accounts: frozenset[str] = frozenset()
    exempt_ips: tuple[Network, ...] = ()

    def limit(self, name: str, profile: str = "") -> Limit:
        """The limit ``name`` as it applies to ``profile`` (the global one unless overridden)."""
        return self.profiles.get(profile, {}).get(name) or self.limits[name]


def _limit(t: Table, name: str, default: Limit) -> Limit:
    """``NAME = COUNT`` or ``NAME = { count = …, period_seconds = … }``."""
    if isinstance(t.data.get(name), dict):
        inner = t.table(name)
        limit = Limit(inner.int("count", default.count),
                      inner.float("period_seconds", default.period_seconds, 1.0))
        inner.check_unknown()
        return limit
    return Limit(t.int(name, default.count), default.period_seconds)


def _networks(t: Table, name: str) -> tuple[Network, ...]:
    out = []
    for entry in t.strs(name):
        try:
            out.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise t.error(name, f"{entry!r} is not an IP address or network (CIDR)") from exc
    return tuple(out)


def parse(t: Table, profiles: Mapping[str, Table]) -> RateLimitSettings:
    """The ``[rate_limits]`` table ``t`` and each profile's ``rate_limits`` sub-table."""
    limits = {name: _limit(t, name, default) for name, default in DEFAULTS.items()}
    overrides = {}
    for profile, table in profiles.items():
        for name in IP_LIMITS:
            if name in table.data:
                raise table.error(name, "a per-IP limit is global only: set it in [rate_limits]")
        overrides[profile] = {name: _limit(table, name, limits[name])
                              for name in PROFILE_LIMITS if name in table.data}
        table.check_unknown()
    settings = RateLimitSettings(
        enabled=t.bool("enabled", True), limits=limits,
        profiles={p: o for p, o in overrides.items() if o},
        exempt_accounts=frozenset(t.strs("exempt_accounts")),
        exempt_ips=_networks(t, "exempt_ips"))
    t.check_unknown()
    return settings
