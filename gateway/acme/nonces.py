"""Anti-replay nonces (RFC 8555 §6.5), kept in memory for a single gateway process.

Each nonce is valid once and for a bounded time; the oldest are dropped when
the pool is full, so memory stays bounded under any load. A client holding a
dropped nonce gets ``badNonce`` and retries with the fresh one in that answer.
"""

from __future__ import annotations

import binascii
import os
import time
from collections.abc import Callable
from typing import Protocol


class Nonces(Protocol):
    """What the ACME front end needs of a nonce store."""

    def new(self) -> str:
        """A fresh nonce."""
        ...

    async def consume(self, nonce: str) -> bool:
        """True once for a nonce this store issued and that has not expired.

        Awaitable, since a store shared by several nodes asks its database.
        """
        ...


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
# RFC 8555 §6.5.1: a nonce is an octet string in base64url, and clients (certbot's
# acme library) decode and re-encode it, so each token must be exactly the encoding
# of its bytes. 18 bytes are 24 characters with no padding and no spare bits, so a
# batch of them encodes in one call and splits at every 24th character.
_TOKEN_BYTES, _TOKEN_CHARS = 18, 24
_BATCH = 64
_ready: list[str] = []  # made by _refill, each handed out once (popped)


def _refill() -> None:
    """Make the next tokens from one read of the system's random source.

    One getrandom call and one encoding per 64 nonces instead of five C calls
    per nonce.
    """
    raw = os.urandom(_BATCH * _TOKEN_BYTES)
    chars = binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE).decode("ascii")
    _ready[:] = [chars[i:i + _TOKEN_CHARS] for i in range(0, len(chars), _TOKEN_CHARS)]


# A forked child must not hand out the tokens its parent holds (or hands out) too.
os.register_at_fork(after_in_child=_ready.clear)


def _token() -> str:
    """144 random bits (os.urandom) as 24 base64url characters, never handed out twice."""
    try:
        return _ready.pop()
    except IndexError:
        _refill()
        return _ready.pop()


class NonceService:
    """Issues and redeems nonces."""

    def __init__(self, lifetime_seconds: float, capacity: int = 200_000,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.lifetime = lifetime_seconds
        self.capacity = capacity
        self._now = monotonic
        # dicts keep insertion order: the first entries are the oldest.
        self._live: dict[str, float] = {}

    def new(self) -> str:
        """A fresh nonce (144 random bits, base64url)."""
        nonce = _token()
        self._live[nonce] = self._now() + self.lifetime
        if len(self._live) > self.capacity:
            del self._live[next(iter(self._live))]
        return nonce

    def redeem(self, nonce: str) -> bool:
        """True once for a nonce this service issued and that has not expired."""
        expires = self._live.pop(nonce, None)
        return expires is not None and expires > self._now()

    async def consume(self, nonce: str) -> bool:
        """:meth:`redeem`, as the Nonces protocol awaits it."""
        return self.redeem(nonce)
