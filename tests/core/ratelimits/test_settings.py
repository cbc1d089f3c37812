"""The [rate_limits] table and [profiles.NAME.rate_limits] overrides."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from gateway import config
from gateway.core.ratelimits.settings import DEFAULTS, Limit
from gateway.errors import ConfigError


def parse(**tables: Any) -> config.Settings:
    return config.parse(tables, "gw.toml")


def test_defaults_apply_without_a_table() -> None:
    limits = parse().rate_limits
    assert limits.enabled and dict(limits.limits) == dict(DEFAULTS)
    assert limits.limit("new_orders_per_account", "default") == Limit(300, 3 * 3600)
    assert limits.limit("certificates_per_registered_domain") == Limit(10_000, 7 * 86400)


@pytest.mark.parametrize("value,want", [
    (20, Limit(20, 3 * 3600)),                               # a count keeps the period
    ({"count": 20, "period_seconds": 60}, Limit(20, 60.0)),
    ({"period_seconds": 60}, Limit(300, 60.0)),
    (0, Limit(0, 3 * 3600)),                                 # 0 = unlimited
])
def test_a_limit_is_a_count_or_a_table(value: Any, want: Limit) -> None:
    limits = parse(rate_limits={"new_orders_per_account": value}).rate_limits
    assert limits.limit("new_orders_per_account") == want
    assert (want.bucket() is None) == (want.count == 0)


def test_a_profile_overrides_only_what_it_names() -> None:
    settings = parse(
        rate_limits={"new_orders_per_account": 10, "exempt_accounts": ["acct1"],
                     "exempt_ips": ["10.0.0.0/8", "2001:db8::1"]},
        profiles={"default": {}, "bulk": {"rate_limits": {
            "new_orders_per_account": {"count": 0}, "certificates_per_registered_domain": 500}}})
    limits = settings.rate_limits
    assert limits.limit("new_orders_per_account", "bulk") == Limit(0, 3 * 3600)
    assert limits.limit("new_orders_per_account", "default") == Limit(10, 3 * 3600)
    assert limits.limit("certificates_per_registered_domain", "bulk").count == 500
    assert limits.limit("failed_validations_per_account_and_name", "bulk") == Limit(5, 3600)
    assert limits.exempt_accounts == {"acct1"}
    assert limits.exempt_ips == (ipaddress.ip_network("10.0.0.0/8"),
                                 ipaddress.ip_network("2001:db8::1/128"))


@pytest.mark.parametrize("doc,key,fragment", [
    ({"rate_limits": {"new_order_per_account": 1}}, "rate_limits.new_order_per_account",
     "unknown option"),
    ({"rate_limits": {"requests_per_ip": -1}}, "rate_limits.requests_per_ip", "from 0"),
    ({"rate_limits": {"requests_per_ip": {"count": 5, "period": 9}}},
     "rate_limits.requests_per_ip.period", "unknown option"),
    ({"rate_limits": {"requests_per_ip": {"period_seconds": 0}}},
     "rate_limits.requests_per_ip.period_seconds", "≥ 1"),
    ({"rate_limits": {"exempt_ips": ["10.0.0.0/33"]}}, "rate_limits.exempt_ips", "CIDR"),
    ({"rate_limits": {"enabled": "yes"}}, "rate_limits.enabled", "true or false"),
    ({"profiles": {"p": {"rate_limits": {"requests_per_ip": 5}}}},
     "profiles.p.rate_limits.requests_per_ip", "global only"),
])
def test_errors_name_the_key(doc: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.parse(doc, "gw.toml")
    assert err.value.key == key and fragment in err.value.expected, err.value
