"""The limiter's choices: which buckets a request draws on, addresses, exemptions, refusals."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway import audit
from gateway.core.ratelimits.limiter import RateLimiter, Requester, period_text
from gateway.core.ratelimits.settings import DEFAULTS, Limit, RateLimitSettings
from gateway.errors import ErrorKind, GatewayError
from gateway.model.clock import FakeClock
from gateway.model.records import PENDING, Account, Identifier, Order
from gateway.model.store import Insert, Update
from gateway.storage.sqlite import SQLiteStore

TWO = Limit(2, 60.0)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "gw.db")
    await s.open()
    yield s
    await s.close()


def limiter(store: SQLiteStore, **fields: Any) -> RateLimiter:
    settings = replace(RateLimitSettings(), **fields)
    clock = FakeClock()
    return RateLimiter(settings, store, clock, audit.AuditTrail(store, clock))


def from_address(address: str) -> None:
    """The address the next requests come from, as the app's middleware sets it.

    Each async test runs in a task of its own, with its own copy of the context.
    """
    audit.CURRENT_REQUEST.set(audit.RequestInfo("r1", address))


def order(account_id: str, *names: str, authz: bool = True) -> Order:
    now = FakeClock().now()
    return Order(id="o1", account_id=account_id, status=PENDING,
                 identifiers=tuple(Identifier("dns", n) for n in names),
                 authz_ids=("z1",) if authz else (), expires=now + timedelta(days=1),
                 profile="default", created_at=now)


@pytest.mark.parametrize("seconds,text", [(604800, "1 week"), (1209600, "2 weeks"),
                                          (86400, "1 day"), (10800, "3 h"), (60, "1 min"),
                                          (90, "90 s"), (0.5, "0.5 s")])
def test_period_text(seconds: float, text: str) -> None:
    assert period_text(seconds) == text


async def test_ipv6_addresses_count_per_64(store: SQLiteStore) -> None:
    limits = limiter(store, limits={**DEFAULTS, "requests_per_ip": TWO})
    for address in ("2001:db8:1:2::1", "2001:db8:1:2::ffff"):
        from_address(address)
        limits.admit_request()
    with pytest.raises(GatewayError) as err:
        limits.admit_request()
    assert "2001:db8:1:2::/64" in err.value.detail and err.value.retry_after == 30
    from_address("2001:db8:1:3::1")  # the next /64 is someone else
    limits.admit_request()


@pytest.mark.parametrize("fields", [{"enabled": False},
                                    {"exempt_ips": (ipaddress.ip_network("192.0.2.0/24"),)}])
async def test_disabled_or_exempt_addresses_are_not_counted(store: SQLiteStore,
                                                            fields: dict[str, Any]) -> None:
    limits = limiter(store, limits={**DEFAULTS, "requests_per_ip": TWO,
                                    "new_nonces_per_ip": TWO}, **fields)
    from_address("192.0.2.9")
    for _ in range(5):
        limits.admit_request()
        limits.admit_nonce()
    assert limits.new_account() == [] and len(limits.local) == 0


async def test_a_request_without_an_address_is_not_counted(store: SQLiteStore) -> None:
    limits = limiter(store, limits={**DEFAULTS, "requests_per_ip": Limit(1, 60.0)})
    for _ in range(3):
        limits.admit_request()
    assert limits.new_account() == []


def test_a_certificate_counts_once_per_registered_domain(store: SQLiteStore) -> None:
    limits = limiter(store)
    spends = limits.certificate_issued(order("a1", "a.example.co.uk", "b.example.co.uk",
                                             "www.other.org"))
    assert [s.key for s in spends] == ["certificates_per_registered_domain:example.co.uk",
                                       "certificates_per_registered_domain:other.org"]
    assert all(s.overdraw for s in spends)


@pytest.mark.parametrize("fields,made", [
    ({}, order("est:user:alice", "r.example.net", authz=False)),  # EST: limited per requester
    ({"exempt_accounts": frozenset({"a1"})}, order("a1", "example.com")),
    ({"enabled": False}, order("a1", "example.com")),
])
def test_certificates_not_counted(store: SQLiteStore, fields: dict[str, Any],
                                  made: Order) -> None:
    assert limiter(store, **fields).certificate_issued(made) == []


async def test_exempt_accounts_and_requesters_draw_on_nothing(store: SQLiteStore) -> None:
    limits = limiter(store, exempt_accounts=frozenset({"a1", "est:user:alice"}))
    assert await limits.new_order("a1", "default", [Identifier("dns", "x.example")]) == []
    assert limits.validation_failed("a1", "default", "x.example") == []
    assert limits.enrollment("est:user:alice", "routers") == []
    assert len(limits.enrollment("est:user:bob", "routers")) == 1


async def test_pay_reports_another_failure_without_refusing(store: SQLiteStore) -> None:
    """A unit failing on its own compare-and-set is False, not a rate-limit refusal."""
    limits = limiter(store)
    account = Account(id="a1", thumbprint="t", jwk={}, created_at=FakeClock().now())
    charges = limits.enrollment("est:user:bob", "routers")
    assert not await limits.pay(charges, [Update(account, expect="valid")], Requester("x"))
    assert await limits.pay(charges, [Insert(account)], Requester("x"))


async def test_a_refused_charge_is_audited_with_its_limit(store: SQLiteStore) -> None:
    limits = limiter(store, limits={**DEFAULTS, "est_enrollments_per_requester": Limit(1, 60)})
    who = Requester("est:user:bob", ("r.example.net",), "routers")
    assert await limits.pay(limits.enrollment("est:user:bob", "routers"), [], who)
    with pytest.raises(GatewayError) as err:
        await limits.pay(limits.enrollment("est:user:bob", "routers"), [], who)
    assert err.value.kind is ErrorKind.RATE_LIMITED and err.value.retry_after == 60
    (row,) = [r for r in await store.audit_rows(0, 10) if r["event"] == audit.RATE_LIMITED]
    assert (row["actor"], row["profile"]) == ("est:user:bob", "routers")
    assert json.loads(row["extra"])["limit"] == "est_enrollments_per_requester"


async def test_new_order_refuses_failed_validations_before_the_registered_domain(
        store: SQLiteStore) -> None:
    """Both limits are read together; the refusal still names the one checked first."""
    one = Limit(1, 60)
    limits = limiter(store, limits={**DEFAULTS, "failed_validations_per_account_and_name": one,
                                    "certificates_per_registered_domain": one},
                     profiles={"strict": {"new_orders_per_account": Limit(0, 60)}})
    names = [Identifier("dns", "www.example.co.uk")]
    assert await store.apply([*limits.validation_failed("a1", "default", "www.example.co.uk"),
                              *limits.certificate_issued(order("a1", "www.example.co.uk"))])
    with pytest.raises(GatewayError) as err:
        await limits.new_order("a1", "default", names)
    assert "failed_validations_per_account_and_name" in err.value.detail
    with pytest.raises(GatewayError) as err:
        await limits.new_order("a2", "default", names)  # a2 has no failures: the domain's turn
    assert "certificates_per_registered_domain reached for registered domain example.co.uk" \
        in err.value.detail
    # A profile override is its own bucket: unlimited new orders draw on nothing.
    assert await limits.new_order("a3", "strict", [Identifier("dns", "x.other.org")]) == []
    assert len(await limits.new_order("a3", "default", [Identifier("dns", "x.other.org")])) == 1
