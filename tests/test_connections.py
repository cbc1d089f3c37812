"""Connection budgets: the caps, what they refuse, and the counts they keep."""

from __future__ import annotations

import logging

import pytest

from gateway.connections import OVER_ADDRESS_CAP, OVER_TOTAL_CAP, Caps, ConnectionBudget
from gateway.metrics import Metrics


def budget(total: int = 4, per_address: int = 2) -> ConnectionBudget:
    return ConnectionBudget(Caps(total, per_address), Metrics(dict))


def closed(b: ConnectionBudget, reason: str) -> float:
    assert b.metrics is not None
    return b.metrics.connections_closed.labels(reason)._value.get()  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize("held,newcomer,refusal", [
    (["a"], "a", None),
    (["a", "a"], "a", OVER_ADDRESS_CAP),
    (["a", "a"], "b", None),
    (["a", "a", "b", "b"], "c", OVER_TOTAL_CAP),
    (["a", "b", "c", "d"], "a", OVER_TOTAL_CAP),
])
def test_admit_within_both_caps(held: list[str], newcomer: str, refusal: str | None) -> None:
    b = budget()
    assert [b.admit(address) for address in held] == [None] * len(held)
    assert b.admit(newcomer) == refusal
    assert b.open == len(held) + (refusal is None)
    if refusal is not None:
        assert closed(b, refusal) == 1


def test_release_gives_the_place_back_and_forgets_the_address() -> None:
    b = budget()
    b.admit("a")
    b.admit("a")
    assert b.admit("a") == OVER_ADDRESS_CAP
    b.release("a")
    assert b.admit("a") is None
    b.release("a")
    b.release("a")
    assert b.open == 0 and "a" not in b.by_address


def test_refusals_are_logged_once_per_interval_with_their_count(
        caplog: pytest.LogCaptureFixture) -> None:
    b = budget(total=2, per_address=1)
    b.admit("a")
    with caplog.at_level(logging.WARNING, "gateway.connections"):
        for _ in range(50):
            b.admit("a")
    assert len(caplog.records) == 1
    assert "over_address_cap" in caplog.records[0].getMessage()
    assert closed(b, OVER_ADDRESS_CAP) == 50
