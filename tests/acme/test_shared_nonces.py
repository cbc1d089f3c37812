"""Shared nonces: single-use, expiring, bounded, and one pool for every forked worker."""

from __future__ import annotations

import base64
import multiprocessing
import os
import struct
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest

from gateway.acme.shared_nonces import SharedNonceService

FORK = multiprocessing.get_context("fork")
WAIT = 30  # seconds: a child that takes longer has hung


def encode(worker: int, slot: int, random: bytes = b"\0" * 13) -> str:
    return base64.urlsafe_b64encode(struct.pack(">BI", worker, slot) + random).decode()


def decode(nonce: str) -> tuple[int, int, bytes]:
    raw = base64.urlsafe_b64decode(nonce)
    worker, slot = struct.unpack(">BI", raw[:5])
    return worker, slot, raw[5:]


def test_nonce_redeems_once() -> None:
    svc = SharedNonceService(60, workers=2)
    nonce = svc.new()
    assert len(nonce) == 24
    assert svc.redeem(nonce) is True
    assert svc.redeem(nonce) is False


def test_nonces_differ_and_name_their_worker() -> None:
    svc = SharedNonceService(60, workers=3, capacity_per_worker=10).for_worker(2)
    nonces = [svc.new() for _ in range(10)]
    assert len(set(nonces)) == 10
    assert [decode(n)[:2] for n in nonces] == [(2, slot) for slot in range(10)]


def test_malformed_and_unknown_nonces_are_refused() -> None:
    svc = SharedNonceService(60, workers=2, capacity_per_worker=8)
    nonce = svc.new()
    worker, slot, random = decode(nonce)
    refused = [
        "", "never-issued", "!" * 24, "é" * 24, nonce[:-1], nonce[:-4], nonce + "A",
        nonce[:20] + "====", nonce[:23] + "=",
        encode(worker, slot),  # right slot, wrong random part
        encode(worker, slot + 1, random),  # a slot not issued yet
        encode(2, slot, random),  # no worker 2
        encode(255, slot, random),
        encode(worker, 8, random),  # past the region's last slot
        encode(worker, 2**32 - 1, random),
    ]
    for bad in refused:
        assert svc.redeem(bad) is False, bad
    assert svc.redeem(nonce) is True


def test_only_the_issued_spelling_is_accepted() -> None:
    # '+' and '/' are the standard alphabet's '-' and '_': a lenient decoder would
    # take both spellings for one nonce.
    svc = SharedNonceService(60, workers=1, capacity_per_worker=1000)
    nonce = next(n for n in iter(svc.new, None) if "-" in n[5:] or "_" in n[5:])
    assert svc.redeem(nonce.replace("-", "+").replace("_", "/")) is False
    assert svc.redeem(nonce) is True


def test_nonce_expires() -> None:
    now = [100.0]
    svc = SharedNonceService(10, workers=1, clock=lambda: now[0])
    early, late = svc.new(), svc.new()
    now[0] = 109.9
    assert svc.redeem(early) is True
    now[0] = 110.0
    assert svc.redeem(late) is False


def test_a_full_region_drops_its_oldest_nonce() -> None:
    svc = SharedNonceService(60, workers=2, capacity_per_worker=3)
    other = svc.for_worker(1).new()
    first, *newer = (svc.new() for _ in range(4))
    assert decode(newer[-1])[1] == 0  # the ring wrapped onto the first slot
    assert svc.redeem(first) is False
    assert all(svc.redeem(n) for n in newer)
    assert svc.redeem(other) is True  # another worker's region is untouched


def test_worker_index_is_checked() -> None:
    svc = SharedNonceService(60, workers=2)
    with pytest.raises(ValueError):
        svc.for_worker(2)
    with pytest.raises(ValueError):
        svc.for_worker(-1)
    with pytest.raises(ValueError):
        SharedNonceService(60, workers=257)
    with pytest.raises(ValueError):
        SharedNonceService(60, workers=1, capacity_per_worker=0)


def _issue(svc: SharedNonceService, worker: int, count: int, out: Connection) -> None:
    view = svc.for_worker(worker)
    out.send([view.new() for _ in range(count)])


def _redeem(svc: SharedNonceService, nonces: list[str], start: Barrier, out: Connection,
            rounds: int = 1) -> None:
    # Racers drift apart and then stop colliding: the barrier lines them up again
    # before each round.
    results: list[bool] = []
    size = -(-len(nonces) // rounds)
    for begin in range(0, len(nonces), size):
        start.wait(WAIT)
        results += [svc.redeem(n) for n in nonces[begin:begin + size]]
    out.send(results)


def _run(target: Callable[..., None], *args: object) -> Any:
    """Run ``target(*args, connection)`` in a forked child and return what it sent."""
    receiver, sender = FORK.Pipe(duplex=False)
    child = FORK.Process(target=target, args=(*args, sender))
    child.start()
    assert receiver.poll(WAIT), "the child sent nothing"
    result = receiver.recv()
    child.join(WAIT)
    assert child.exitcode == 0
    return result


def test_a_nonce_issued_by_one_worker_is_redeemed_by_another() -> None:
    svc = SharedNonceService(60, workers=2, capacity_per_worker=1000)
    issued: list[str] = _run(_issue, svc, 1, 500)
    assert len(issued) == 500
    assert all(decode(n)[0] == 1 and svc.redeem(n) for n in issued)
    assert not any(svc.redeem(n) for n in issued)

    mine = [svc.new() for _ in range(10)]
    assert _run(_redeem, svc, mine, FORK.Barrier(1)) == [True] * 10
    assert not any(svc.redeem(n) for n in mine)


def test_workers_sharing_a_region_take_different_slots() -> None:
    svc = SharedNonceService(60, workers=2, capacity_per_worker=5000)
    receivers, children = [], []
    for _ in range(2):
        receiver, sender = FORK.Pipe(duplex=False)
        child = FORK.Process(target=_issue, args=(svc, 1, 2000, sender))
        child.start()
        receivers.append(receiver)
        children.append(child)
    issued: list[str] = []
    for receiver in receivers:
        assert receiver.poll(WAIT)
        issued += receiver.recv()
    for child in children:
        child.join(WAIT)
        assert child.exitcode == 0
    assert len({decode(n)[1] for n in issued}) == 4000
    assert all(svc.redeem(n) for n in issued)


def test_concurrent_redeems_of_one_nonce_yield_one_success() -> None:
    svc = SharedNonceService(60, workers=2, capacity_per_worker=5000)
    nonces = [svc.for_worker(1).new() for _ in range(5000)]
    racers = 4
    start = FORK.Barrier(racers)
    receivers, children = [], []
    for _ in range(racers):
        receiver, sender = FORK.Pipe(duplex=False)
        child = FORK.Process(target=_redeem, args=(svc, nonces, start, sender, 20))
        child.start()
        receivers.append(receiver)
        children.append(child)
    results: list[list[bool]] = []
    for receiver in receivers:
        assert receiver.poll(WAIT)
        results.append(receiver.recv())
    for child in children:
        child.join(WAIT)
        assert child.exitcode == 0
    assert [sum(column) for column in zip(*results, strict=True)] == [1] * len(nonces)
    assert not any(svc.redeem(n) for n in nonces)


def test_lock_held_by_a_dead_process_is_recovered() -> None:
    svc = SharedNonceService(60, workers=1)
    assert svc.recover_lock(wait_seconds=0.01) is False  # free: nothing to do
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_take_lock_and_die, args=(svc,))
    child.start()
    child.join()
    assert svc.recover_lock(wait_seconds=0.05) is True
    issued = svc.new()
    assert svc.redeem(issued) is True


def _take_lock_and_die(svc: SharedNonceService) -> None:
    svc._lock.acquire()
    os._exit(0)
