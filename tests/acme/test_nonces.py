"""Nonces are single-use, expire, and the pool stays bounded."""

from __future__ import annotations

import base64
import re

from gateway.acme.nonces import NonceService


def test_nonce_redeems_once() -> None:
    svc = NonceService(60)
    nonce = svc.new()
    assert svc.redeem(nonce) is True
    assert svc.redeem(nonce) is False
    assert svc.redeem("never-issued") is False


def test_nonce_expires() -> None:
    now = [0.0]
    svc = NonceService(10, monotonic=lambda: now[0])
    nonce = svc.new()
    now[0] = 11
    assert svc.redeem(nonce) is False


def test_pool_drops_the_oldest_when_full() -> None:
    svc = NonceService(60, capacity=2)
    first, second, third = svc.new(), svc.new(), svc.new()
    assert svc.redeem(first) is False
    assert svc.redeem(second) and svc.redeem(third)


def test_nonces_are_base64url_of_their_bytes_and_distinct() -> None:
    svc = NonceService(60)
    nonces = {svc.new() for _ in range(1000)}
    assert len(nonces) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{24}", n) for n in nonces)
    # RFC 8555 §6.5.1: an octet string in base64url. Clients decode and re-encode it
    # (certbot does), so each nonce must be exactly the encoding of its bytes.
    for nonce in nonces:
        raw = base64.urlsafe_b64decode(nonce)
        assert len(raw) == 18 and base64.urlsafe_b64encode(raw).decode() == nonce


def test_a_forked_child_makes_nonces_of_its_own() -> None:
    import os

    svc = NonceService(60)
    svc.new()  # the parent now holds tokens made in advance
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next nonces and leave at once
        os.write(write, ",".join(svc.new() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = set(os.read(read, 4096).decode().split(","))
    os.close(read)
    parent = {svc.new() for _ in range(200)}
    assert len(child) == 3 and not child & parent
