"""The inventory queries on every store: search conditions, counts, accounts, audit rows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.model.records import (
    DEACTIVATED,
    AuditEvent,
    Certificate,
    CertificateQuery,
    Identifier,
    Job,
    Order,
)
from gateway.model.store import Insert, Store
from gateway.storage.inventory import like_pattern
from tests.storage.models import NOW, account
from tests.storage.test_contract import MakeStore, make_store  # noqa: F401  (the fixture)

DAY = timedelta(days=1)


def _issued(i: str, names: tuple[str, ...], expires_in_days: int, profile: str = "web",
            revoked: bool = False) -> tuple[Order, Certificate]:
    o = Order(id=f"o{i}", account_id=f"a{i}", status="valid",
              identifiers=tuple(Identifier("dns", n) for n in names), authz_ids=(),
              expires=NOW, profile=profile, created_at=NOW)
    c = Certificate(id=f"c{i}", order_id=o.id, account_id=o.account_id, serial=f"{i}ab",
                    leaf_der=b"x", chain_pem="", not_before=NOW - DAY * int(i),
                    not_after=NOW + DAY * expires_in_days, spki_sha256=f"s{i}", ca="local",
                    revoked_at=NOW if revoked else None, revocation_reason=1 if revoked else None)
    return o, c


@pytest.fixture
async def store(make_store: MakeStore) -> Store:  # noqa: F811  (the imported fixture)
    """Every backend of the Store contract, holding four certificates."""
    s = await make_store()
    rows = [_issued("1", ("a.example.com",), 5), _issued("2", ("b_c.example.com",), 20, "vpn"),
            _issued("3", ("a.example.com", "x.test"), 60, revoked=True),
            _issued("4", ("old.example.com",), -3)]
    await s.apply([Insert(m) for pair in rows for m in pair])
    return s


@pytest.mark.parametrize(("query", "ids"), [
    (CertificateQuery(), ["c1", "c2", "c3", "c4"]),  # newest first
    (CertificateQuery(name="a.example"), ["c1", "c3"]),
    (CertificateQuery(name="b_c"), ["c2"]),
    (CertificateQuery(name="b%c"), []),  # wildcards literal
    (CertificateQuery(serial="2ab"), ["c2"]),
    (CertificateQuery(profile="vpn"), ["c2"]),
    (CertificateQuery(account="a1"), ["c1"]),
    (CertificateQuery(state="valid"), ["c1", "c2"]),
    (CertificateQuery(state="revoked"), ["c3"]),
    (CertificateQuery(state="expired"), ["c4"]),
    (CertificateQuery(expires_after=NOW, expires_before=NOW + 30 * DAY), ["c1", "c2"]),
    (CertificateQuery(limit=1), ["c1"]),
])
async def test_search_and_count(store: Store, query: CertificateQuery,
                                ids: list[str]) -> None:
    found = await store.find_certificates(query, NOW)
    assert [c.id for c, _ in found] == ids
    assert all(c.order_id == o.id for c, o in found)
    if query.limit > len(ids):
        assert await store.count_certificates(query, NOW) == len(ids)


async def test_accounts_jobs_and_request_audit(store: Store) -> None:
    await store.apply([Insert(account("x1")), Insert(account("x2").moved(DEACTIVATED)),
                       Insert(Job(id="j1", order_id="o1", state="approval")),
                       Insert(Job(id="j2", order_id="o2", state="queued", run_at=NOW)),
                       Insert(AuditEvent("issued", NOW, request_id="o1")),
                       Insert(AuditEvent("revoked", NOW, request_id="o1")),
                       Insert(AuditEvent("issued", NOW, request_id="o2"))])
    assert [a.id for a in await store.list_accounts("", 10)] == ["x1", "x2"]
    assert [a.id for a in await store.list_accounts(DEACTIVATED, 10)] == ["x2"]
    assert await store.count_jobs() == {"approval": 1, "queued": 1}
    rows = await store.audit_of_request("o1", 10)
    assert [r["event"] for r in rows] == ["issued", "revoked"]


def test_like_patterns_take_wildcards_literally() -> None:
    assert like_pattern("a%b_c\\") == "%a\\%b\\_c\\\\%"


