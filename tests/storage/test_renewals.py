"""Store methods of renewal information: replacing orders, advice, live certificates.

Part of the Store contract: each test runs on every backend (SQLite, PostgreSQL).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from gateway.model.records import INVALID, Certificate, RenewalAdvice
from gateway.model.store import Insert, Store, Update
from tests.storage.models import NOW, order
from tests.storage.test_contract import make_store, store  # noqa: F401  (the fixtures)


def certificate(i: str, order_id: str, *, days: int = 90,
                revoked: bool = False) -> Certificate:
    return Certificate(id=i, order_id=order_id, account_id="a1", serial=f"5e{i}",
                       leaf_der=b"\x30\x00", chain_pem="", not_before=NOW - timedelta(days=1),
                       not_after=NOW + timedelta(days=days), spki_sha256="s", ca="local",
                       revoked_at=NOW if revoked else None)


async def test_order_replacing_skips_failed_orders(store: Store) -> None:  # noqa: F811
    first = replace(order("o1"), replaces="AQ.AQ")
    await store.apply([Insert(first), Insert(order("o2"))])
    assert await store.order_replacing("AQ.AQ") == first
    assert await store.order_replacing("AQ.Ag") is None
    await store.apply([Update(first.moved(INVALID), expect=first.status)])
    assert await store.order_replacing("AQ.AQ") is None


async def test_advice_round_trip_and_overwrite(store: Store) -> None:  # noqa: F811
    advice = RenewalAdvice(id="c1", advanced_at=NOW, reason="incident",
                           explanation_url="https://x.example")
    assert await store.get_renewal_advice("c1") is None
    await store.apply([Insert(advice)])
    assert await store.get_renewal_advice("c1") == advice
    later = replace(advice, advanced_at=NOW + timedelta(hours=1), reason="again")
    await store.apply([Update(later)])
    assert await store.get_renewal_advice("c1") == later


async def test_live_certificates_are_unexpired_and_unrevoked(
        store: Store) -> None:  # noqa: F811
    await store.apply([Insert(order("o1")), Insert(order("o2")), Insert(order("o3")),
                       Insert(certificate("c1", "o1")),
                       Insert(certificate("c2", "o2", days=-1)),
                       Insert(certificate("c3", "o3", revoked=True))])
    assert await store.live_certificates(NOW) == [(certificate("c1", "o1"), order("o1"))]
