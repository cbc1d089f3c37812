"""Checks that Updates of orders, authorizations and challenges are stored whole.

``rows.updated`` rewrites only the columns a move of those records may set, so a
field changed outside them would be lost silently. A test records the last Update
each record received while it drives a flow, then compares it with the store.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gateway.model.records import Authorization, Challenge, Order
from gateway.storage import rows


def record_updates(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The last Update of each order, authorization and challenge, by id, from now on."""
    last: dict[str, Any] = {}
    narrowed = rows.updated

    def recording(model: Any) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        if isinstance(model, Order | Authorization | Challenge):
            last[model.id] = model
        return narrowed(model)

    monkeypatch.setattr(rows, "updated", recording)
    return last


def _fields(record: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)
            if f.name not in skip}


async def assert_stored_whole(store: Any, last: dict[str, Any]) -> set[type]:
    """Assert each recorded Update is what the store holds; return the kinds checked."""
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
    return {type(m) for m in last.values()}
