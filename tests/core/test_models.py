"""Identifiers and the state machines of the core's objects."""

from __future__ import annotations

import pytest

from gateway.model.records import (
    IllegalTransition,
    id_from_bytes,
    new_id,
)


def test_ids_are_lowercase_base32_and_never_look_like_an_option() -> None:
    assert id_from_bytes(b"\xff" * 16) == "7" * 25 + "4"
    assert id_from_bytes(bytes(16)) == "a" * 26
    for _ in range(2000):
        ident = new_id()
        assert len(ident) == 26 and ident.isalnum() and ident == ident.lower()


@pytest.mark.parametrize("size", [16, 20, 32, 1])
def test_ids_are_the_rfc4648_base32_of_their_bytes(size: int) -> None:
    import base64
    import os

    for _ in range(500):
        raw = os.urandom(size)
        assert id_from_bytes(raw) == base64.b32encode(raw).decode().rstrip("=").lower()


def test_order_moves_only_along_the_rfc_state_machine() -> None:
    from datetime import UTC, datetime

    from gateway.model.records import Identifier, Order

    now = datetime(2030, 1, 1, tzinfo=UTC)
    order = Order(id="o", account_id="a", status="pending",
                  identifiers=(Identifier("dns", "example.com"),), authz_ids=(),
                  expires=now, profile="default", created_at=now)
    assert order.moved("ready").moved("processing").moved("valid").status == "valid"
    with pytest.raises(IllegalTransition):
        order.moved("valid")


def test_a_move_copies_every_other_field_and_refuses_unknown_ones() -> None:
    from dataclasses import FrozenInstanceError, replace
    from datetime import UTC, datetime

    from gateway.model.records import Challenge, Identifier, Order

    now = datetime(2030, 1, 1, tzinfo=UTC)
    order = Order(id="o", account_id="a", status="ready",
                  identifiers=(Identifier("dns", "example.com"),), authz_ids=("z",),
                  expires=now, profile="default", created_at=now, csr_der=b"csr")
    moved = order.moved("processing", approval="pending")
    assert moved == replace(order, status="processing", approval="pending")
    assert hash(moved) == hash(replace(order, status="processing", approval="pending"))
    assert order.status == "ready" and order.approval is None  # the original is untouched
    with pytest.raises(FrozenInstanceError):
        moved.status = "valid"  # type: ignore[misc]
    with pytest.raises(TypeError, match="no field colour"):
        order.moved("processing", colour="blue")
    chall = Challenge(id="c", authz_id="z", type="http-01", token="t")
    assert chall.moved("processing", validated=now) == replace(chall, status="processing",
                                                                validated=now)
