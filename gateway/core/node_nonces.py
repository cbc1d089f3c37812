"""Anti-replay nonces (RFC 8555 §6.5) shared by gateway nodes through the store.

Behind a load balancer a client takes a nonce from one node and spends it at
another, so a nonce must be valid at every node and spendable only once
anywhere. Issuing must stay cheap (every ACME answer carries a nonce), so it
writes nothing: a nonce carries its own expiry and a MAC under a key every
node reads from the store, and any node can tell one of ours from a forgery
by itself. Only spending writes: the nonce goes into the store's ledger of
spent nonces, whose primary key lets exactly one spend succeed. Expired
entries are dropped now and then; an expired nonce fails its expiry check
before the ledger is asked.

    base64url( expires (8 bytes, ms since the epoch) | random (12) | HMAC-SHA256[:16] )

36 bytes encode to 48 base64url characters without padding, so each nonce
has one spelling. Expiry uses the wall clock: nodes keep their clocks in
step (NTP), as TLS and certificate validity already require.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import struct
import time
from collections.abc import Callable

from gateway.model.store import NonceLedger

log = logging.getLogger("gateway.nonces")

_HEAD = struct.Struct(">Q12s")  # expires (ms), random
_TAG_BYTES = 16
_NONCE_CHARS = 48  # base64 of 36 bytes, no padding
SECRET_NAME = "acme-nonce-mac"


class NodeNonces:
    """Issues nonces any node accepts; spends each once across all of them.

    Made unbound (the store opens later, in the application's start-up) and
    bound with :meth:`start` before the first request.
    """

    def __init__(self, lifetime_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.lifetime = lifetime_seconds
        self._now = clock
        self._key: bytes | None = None
        self._ledger: NonceLedger | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, ledger: NonceLedger) -> None:
        """Read (or make) the nodes' shared key and start dropping expired entries."""
        self._key = await ledger.node_secret(SECRET_NAME)
        self._ledger = ledger
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="nonce-sweeper")

    async def stop(self) -> None:
        """Stop the sweeper."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    def _tag(self, head: bytes) -> bytes:
        assert self._key is not None, "NodeNonces used before start()"
        return hmac.new(self._key, head, hashlib.sha256).digest()[:_TAG_BYTES]

    def new(self) -> str:
        """A fresh nonce; nothing is written."""
        expires_ms = int((self._now() + self.lifetime) * 1000)
        head = _HEAD.pack(expires_ms, os.urandom(12))
        return base64.urlsafe_b64encode(head + self._tag(head)).decode("ascii")

    async def consume(self, nonce: str) -> bool:
        """True once, at whichever node, for an unexpired nonce a node issued."""
        expires = self._check(nonce)
        if expires is None:
            return False
        assert self._ledger is not None
        return await self._ledger.spend_nonce(nonce, expires)

    def _check(self, nonce: str) -> float | None:
        """The expiry (UNIX seconds) of a well-formed, authentic, unexpired nonce; else None."""
        if len(nonce) != _NONCE_CHARS:
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce.encode("ascii"))
        except (UnicodeEncodeError, binascii.Error):
            return None
        # Another spelling of the same bytes (e.g. '+' for '-') is not the nonce issued.
        if base64.urlsafe_b64encode(raw).decode("ascii") != nonce:
            return None
        head, tag = raw[:_HEAD.size], raw[_HEAD.size:]
        if not hmac.compare_digest(tag, self._tag(head)):
            return None
        expires = _HEAD.unpack(head)[0] / 1000
        return expires if expires > self._now() else None

    async def _sweep_loop(self) -> None:
        period = min(self.lifetime, 300.0)
        while True:
            await asyncio.sleep(period)
            try:
                assert self._ledger is not None
                await self._ledger.forget_spent_nonces(self._now())
            except Exception as exc:  # the database may be down; the next round catches up
                log.warning("dropping expired nonces failed: %s", exc)
