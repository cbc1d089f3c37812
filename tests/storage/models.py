"""Small model objects the storage tests write and read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.model.records import PENDING, Account, Authorization, Challenge, Identifier, Order

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def account(i: str) -> Account:
    """A valid account with id ``i`` and thumbprint ``tp-<i>``."""
    return Account(id=i, thumbprint=f"tp-{i}", jwk={"kty": "EC"}, created_at=NOW)


def order(i: str, account_id: str = "a1") -> Order:
    """A pending order of one DNS name."""
    return Order(id=i, account_id=account_id, status=PENDING,
                 identifiers=(Identifier("dns", "example.com"),), authz_ids=(f"z-{i}",),
                 expires=NOW + timedelta(days=7), profile="default", created_at=NOW)


def authz(i: str, order_id: str) -> Authorization:
    """A pending authorization with one HTTP-01 challenge ``c-<i>``."""
    return Authorization(id=i, account_id="a1", order_id=order_id,
                         identifier=Identifier("dns", "example.com"), status=PENDING,
                         expires=NOW + timedelta(days=30),
                         challenges=(Challenge(id=f"c-{i}", authz_id=i, type="http-01",
                                               token="t"),))
