"""Basic-auth password checks: correct, constant-time-ish refusal, and the success cache."""

from __future__ import annotations

import pytest

from gateway.est import passwords
from gateway.est.passwords import VerifiedCache, hash_password, verify_password_async


@pytest.fixture(scope="module")
def encoded() -> str:
    return hash_password("s3cret", iterations=1000)


async def test_verify_and_refuse(encoded: str) -> None:
    cache = VerifiedCache()
    assert await verify_password_async("s3cret", encoded, cache)
    assert not await verify_password_async("wrong", encoded, cache)
    assert not await verify_password_async("s3cret", None, cache)


async def test_success_is_remembered_and_failure_is_not(encoded: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cache = VerifiedCache()
    calls: list[str] = []
    real = passwords.verify_password

    def counting(password: str, enc: str) -> bool:
        calls.append(password)
        return real(password, enc)

    monkeypatch.setattr(passwords, "verify_password", counting)
    for _ in range(3):
        assert await verify_password_async("s3cret", encoded, cache)
        assert not await verify_password_async("wrong", encoded, cache)
    assert calls.count("s3cret") == 1
    assert calls.count("wrong") == 3


def test_cache_expires_and_is_bounded(encoded: str, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(passwords.time, "monotonic", lambda: now[0])
    cache = VerifiedCache(ttl_seconds=10, capacity=2)
    cache.remember("a", encoded)
    assert cache.hit("a", encoded) and not cache.hit("a", "other-hash")
    now[0] += 11
    assert not cache.hit("a", encoded)
    for pw in ("x", "y", "z"):
        cache.remember(pw, encoded)
    assert not cache.hit("x", encoded) and cache.hit("z", encoded)
