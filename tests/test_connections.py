"""Connection budgets: the caps, what they refuse, and the counts they keep."""

from __future__ import annotations

import logging

import pytest

from gateway import connections
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


def test_closures_are_reported_once_per_interval_with_their_counts(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(connections.time, "monotonic", lambda: now[0])
    b = budget(total=2, per_address=1)
    b.admit("a")
    with caplog.at_level(logging.INFO, "gateway.connections"):
        for _ in range(50):
            b.admit("a")  # the first is reported at once, the others wait
        now[0] += connections.REPORT_INTERVAL_SECONDS
        b.closed(connections.HEADER_TIMEOUT, "b")
        now[0] += connections.REPORT_INTERVAL_SECONDS
        b.closed(connections.IDLE_TIMEOUT, "c")
    assert [(r.levelno, r.getMessage().split(" (")[0]) for r in caplog.records] == [
        (logging.WARNING, "connections closed by the gateway: 1 over_address_cap"),
        (logging.WARNING, "connections closed by the gateway: 1 header_timeout, "
                          "49 over_address_cap"),
        (logging.INFO, "connections closed by the gateway: 1 idle_timeout")]
    assert closed(b, OVER_ADDRESS_CAP) == 50
