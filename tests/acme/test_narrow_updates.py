"""Updates of orders, authorizations and challenges rewrite only the columns a move sets
(``rows.updated``): every Update the full ACME flow makes must therefore change nothing
else, or the change would be silently lost. This replays the flow and compares what
each last Update carried with what the store holds afterwards."""

from __future__ import annotations

import pytest

from gateway import keys
from gateway.model.records import Authorization, Challenge, Order
from tests.acme.flow import issue
from tests.acme.narrow import assert_stored_whole, record_updates
from tests.acme.support import Gateway


async def test_every_update_of_the_flow_is_stored_whole(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    last = record_updates(monkeypatch)
    c = await gateway.ready_client()
    await issue(c, ["www.example.com", "example.com"])

    store = gateway.http.app[keys.CORE].orders.store
    # the flow moved all three
    assert await assert_stored_whole(store, last) == {Order, Authorization, Challenge}
