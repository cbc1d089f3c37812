"""Nonces shared by gateway nodes: issued anywhere, spent once anywhere, forged never."""

from __future__ import annotations

import asyncio
import base64

import pytest

from gateway.core.node_nonces import NodeNonces


class Ledger:
    """The spent-nonce ledger of a store, in memory."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self.secrets: dict[str, bytes] = {}

    async def spend_nonce(self, nonce: str, expires: float) -> bool:
        if nonce in self.spent:
            return False
        self.spent[nonce] = expires
        return True

    async def forget_spent_nonces(self, before: float) -> None:
        self.spent = {n: e for n, e in self.spent.items() if e >= before}

    async def node_secret(self, name: str, size: int = 32) -> bytes:
        return self.secrets.setdefault(name, bytes(range(size)))


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def nodes() -> tuple[NodeNonces, NodeNonces, Clock]:
    ledger, clock = Ledger(), Clock()
    a, b = NodeNonces(60, clock), NodeNonces(60, clock)
    await a.start(ledger)
    await b.start(ledger)
    yield a, b, clock  # type: ignore[misc]
    await a.stop()
    await b.stop()


async def test_issued_by_one_node_spent_once_at_either(
        nodes: tuple[NodeNonces, NodeNonces, Clock]) -> None:
    a, b, _ = nodes
    nonce = a.new()
    assert len(nonce) == 48 and nonce != a.new()
    assert await b.consume(nonce) is True
    assert await a.consume(nonce) is False
    assert await b.consume(nonce) is False


async def test_concurrent_spends_of_one_nonce_yield_one_success(
        nodes: tuple[NodeNonces, NodeNonces, Clock]) -> None:
    a, b, _ = nodes
    nonce = a.new()
    results = await asyncio.gather(*(n.consume(nonce) for n in (a, b) * 5))
    assert sorted(results) == [False] * 9 + [True]


async def test_an_expired_nonce_is_refused(nodes: tuple[NodeNonces, NodeNonces, Clock]) -> None:
    a, b, clock = nodes
    early, late = a.new(), a.new()
    clock.now += 59
    assert await b.consume(early) is True
    clock.now += 2
    assert await b.consume(late) is False


def _flip_last_char(nonce: str) -> str:
    return nonce[:-1] + ("A" if nonce[-1] != "A" else "B")


@pytest.mark.parametrize("spoil", [
    _flip_last_char,                                   # a forged MAC
    lambda n: n[:-4],                                  # too short
    lambda n: n + "AAAA",                              # too long
    lambda n: n.replace("-", "+").replace("_", "/") if ("-" in n or "_" in n) else "+" + n[1:],
    lambda n: "é" * 48,                                # not ASCII
    lambda n: "!" * 48,                                # not base64
    lambda n: "",
])
async def test_malformed_or_forged_nonces_are_refused_without_spending(
        nodes: tuple[NodeNonces, NodeNonces, Clock], spoil: object) -> None:
    a, b, _ = nodes
    nonce = a.new()
    assert await b.consume(spoil(nonce)) is False  # type: ignore[operator]
    assert await b.consume(nonce) is True  # the real one is still good


async def test_a_node_with_another_key_refuses_our_nonces() -> None:
    clock = Clock()
    ours, theirs = NodeNonces(60, clock), NodeNonces(60, clock)
    await ours.start(Ledger())
    other = Ledger()
    other.secrets["acme-nonce-mac"] = b"\xff" * 32
    await theirs.start(other)
    try:
        assert await theirs.consume(ours.new()) is False
    finally:
        await ours.stop()
        await theirs.stop()


async def test_expiry_is_inside_the_mac() -> None:
    """Moving a nonce's expiry forward breaks its MAC."""
    clock = Clock()
    node = NodeNonces(60, clock)
    await node.start(Ledger())
    raw = bytearray(base64.urlsafe_b64decode(node.new()))
    raw[0] ^= 0x01  # a far later expiry
    try:
        assert await node.consume(base64.urlsafe_b64encode(bytes(raw)).decode()) is False
    finally:
        await node.stop()
