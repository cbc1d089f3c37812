"""Password hashes for EST HTTP Basic users: PBKDF2-HMAC-SHA256, never plain text.

Format: ``pbkdf2-sha256$<iterations>$<salt, base64>$<derived key, base64>``.
Verification runs in a worker thread: 600 000 iterations take a fraction of a
second of CPU that must not stall the event loop. A router re-enrolls and polls
with the same credentials, so a successful check is remembered for a few
minutes under a SHA-256 of (user hash, password): without that, every EST
request with Basic auth costs ~300 ms of CPU and a client could exhaust the
gateway by sending valid credentials in a loop. Failures are never remembered.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import time
from collections import OrderedDict

SCHEME = "pbkdf2-sha256"
DEFAULT_ITERATIONS = 600_000
# Verified against when the user is unknown, so the answer takes as long as for a known one.
_DUMMY = f"{SCHEME}$1000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def hash_password(password: str, iterations: int = DEFAULT_ITERATIONS) -> str:
    """A new salted hash of ``password`` in the config format."""
    salt = os.urandom(16)
    derived = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return "$".join([SCHEME, str(iterations), base64.b64encode(salt).decode(),
                     base64.b64encode(derived).decode()])


def _parts(encoded: str) -> tuple[int, bytes, bytes] | None:
    fields = encoded.split("$")
    if len(fields) != 4 or fields[0] != SCHEME or not fields[1].isdigit():
        return None
    try:
        salt = base64.b64decode(fields[2], validate=True)
        derived = base64.b64decode(fields[3], validate=True)
    except (binascii.Error, ValueError):
        return None
    iterations = int(fields[1])
    if iterations < 1000 or len(salt) < 8 or len(derived) < 16:
        return None
    return iterations, salt, derived


def check_hash_format(encoded: str) -> bool:
    """Whether ``encoded`` is a hash this module can verify."""
    return _parts(encoded) is not None


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded`` (constant-time comparison)."""
    parts = _parts(encoded)
    if parts is None:
        return False
    iterations, salt, derived = parts
    candidate = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations,
                                    len(derived))
    return hmac.compare_digest(candidate, derived)


class VerifiedCache:
    """Remembers recently verified (hash, password) pairs, bounded in size and time."""

    def __init__(self, ttl_seconds: float = 300.0, capacity: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.capacity = capacity
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    @staticmethod
    def _key(password: str, encoded: str) -> bytes:
        return hashlib.sha256(f"{encoded}\x00{password}".encode()).digest()

    def hit(self, password: str, encoded: str) -> bool:
        """Whether this exact pair was verified within the last ``ttl`` seconds."""
        key = self._key(password, encoded)
        expires = self._seen.get(key)
        if expires is None or expires < time.monotonic():
            self._seen.pop(key, None)
            return False
        return True

    def remember(self, password: str, encoded: str) -> None:
        """Record a successful verification."""
        self._seen[self._key(password, encoded)] = time.monotonic() + self.ttl
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)


_VERIFIED = VerifiedCache()


async def verify_password_async(password: str, encoded: str | None,
                                cache: VerifiedCache = _VERIFIED) -> bool:
    """:func:`verify_password` off the event loop; an unknown user (None) never matches."""
    if encoded is not None and cache.hit(password, encoded):
        return True
    ok = await asyncio.to_thread(verify_password, password, encoded or _DUMMY)
    if ok and encoded is not None:
        cache.remember(password, encoded)
    return ok and encoded is not None
