"""The narrowed Updates (``rows.updated``) lose nothing on the policy paths either:
an approver's decision on a held order, and a failed validation that ends an order."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import ErrorKind
from gateway.model.records import Authorization, Challenge, Order
from gateway.validation import ValidationFailure
from tests.acme.flow import validate_all
from tests.acme.narrow import assert_stored_whole, record_updates
from tests.acme.support import eventually
from tests.acmeclient import AcmeClient, make_csr
from tests.policy.support import PolicyGateway, finalize, new_order, ready_order


async def _held(pgw: PolicyGateway) -> tuple[AcmeClient, dict[str, Any], str]:
    c = await pgw.client()
    order = await ready_order(c, ["app.example.com"], "manual")
    resp, body = await finalize(c, order, make_csr(["app.example.com"])[0])
    assert resp.status == 200 and body["status"] == "processing"
    return c, order, order["url"].rsplit("/", 1)[1]


async def _reaches(c: AcmeClient, url: str, status: str) -> None:
    async def reached() -> bool:
        return bool((await c.post(url))[1]["status"] == status)

    await eventually(reached)


async def test_an_approved_order_is_stored_whole(pgw: PolicyGateway,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    last = record_updates(monkeypatch)
    c, order, order_id = await _held(pgw)
    await pgw.core.approvals.approve(order_id, "alice")
    await _reaches(c, order["url"], "valid")
    stored = await pgw.core.orders.store.get_order(order_id)
    assert stored.approval == "approved" and stored.certificate_id
    assert await assert_stored_whole(pgw.core.orders.store, last) == \
        {Order, Authorization, Challenge}


async def test_a_rejected_order_is_stored_whole(pgw: PolicyGateway,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    last = record_updates(monkeypatch)
    c, order, order_id = await _held(pgw)
    await pgw.core.approvals.reject(order_id, "alice", "not today")
    await _reaches(c, order["url"], "invalid")
    assert order_id in last and last[order_id].status == "invalid"
    await assert_stored_whole(pgw.core.orders.store, last)


async def test_a_failed_validation_is_stored_whole(pgw: PolicyGateway,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    last = record_updates(monkeypatch)
    pgw.validator.failure = ValidationFailure(ErrorKind.INCORRECT_RESPONSE, "wrong token")
    c = await pgw.client()
    resp, order = await new_order(c, ["www.example.com"])
    assert resp.status == 201
    await validate_all(c, order)
    await _reaches(c, resp.headers["Location"], "invalid")
    moved = {type(m): m for m in last.values()}
    assert moved[Challenge].status == "invalid" and moved[Challenge].error
    assert await assert_stored_whole(pgw.core.orders.store, last) == \
        {Order, Authorization, Challenge}
