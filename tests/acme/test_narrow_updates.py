"""Updates of orders, authorizations and challenges rewrite only the columns a move sets
(``rows.updated``): every Update the full ACME flow makes must therefore change nothing
else, or the change would be silently lost. This replays the flow and compares what
each last Update carried with what the store holds afterwards."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gateway import keys
from gateway.model.records import Authorization, Challenge, Order
from gateway.storage import rows
from tests.acme.flow import issue
from tests.acme.support import Gateway


def _fields(record: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)
            if f.name not in skip}


async def test_every_update_of_the_flow_is_stored_whole(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    last: dict[str, Any] = {}
    narrowed = rows.updated

    def recording(model: Any) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        if isinstance(model, Order | Authorization | Challenge):
            last[model.id] = model
        return narrowed(model)

    monkeypatch.setattr(rows, "updated", recording)
    c = await gateway.ready_client()
    await issue(c, ["www.example.com", "example.com"])

    store = gateway.http.app[keys.CORE].orders.store
    kinds = {type(m) for m in last.values()}
    assert kinds == {Order, Authorization, Challenge}  # the flow moved all three
    for model in last.values():
        if isinstance(model, Order):
            stored: Any = await store.get_order(model.id)
            assert _fields(stored) == _fields(model)
        elif isinstance(model, Authorization):
            stored = await store.get_authz(model.id)
            # its challenges are rows of their own, moved by their own Updates
            assert _fields(stored, ("challenges",)) == _fields(model, ("challenges",))
        else:
            authz = await store.get_authz(model.authz_id)
            assert authz is not None and authz.challenge(model.id) == model
