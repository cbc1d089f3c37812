"""Anti-replay nonces (RFC 8555 §6.5) shared by the forked worker processes of one gateway.

With ``serve --workers N`` every worker answers on the same port, and clients
spend a pooled nonce on whichever connection they have, so a nonce issued by
one worker is often redeemed by another. The pool therefore lives in one
anonymous shared mapping created before the fork, guarded by one semaphore
the children inherit.

The mapping holds a fixed number of slots per worker, each worker's slots used
as a ring: memory is bounded from the start, and when a region wraps its oldest
nonce is overwritten and so refused, like a nonce ``NonceService`` dropped. A
nonce names its own slot, so redeeming is one lookup, no search:

    base64url( worker (1 byte) | slot (4 bytes, big-endian) | random (13 bytes) )

18 bytes encode to exactly 24 base64url characters, without padding or spare
bits, so each nonce has exactly one spelling and the 104 random bits keep it
unguessable.
"""

from __future__ import annotations

import binascii
import mmap
import multiprocessing
import os
import struct
import time
from collections.abc import Callable

_RANDOM_BYTES = 13
_NONCE = struct.Struct(">BI13s")  # worker, slot, random
_NONCE_CHARS = 24  # base64 of _NONCE.size == 18 bytes, no padding
# A slot: expiry (clock seconds), live flag, random part; padded to 24 bytes.
_SLOT = struct.Struct("<d?13s2x")
# A region starts with its ring head (the next slot to write), padded to 8 bytes.
_HEAD = struct.Struct("<I4x")
_CLEARED = b"\0" * _RANDOM_BYTES

# base64url <-> the standard alphabet binascii speaks. Decoding also maps '+' and
# '/' to a character strict mode rejects: otherwise "a+b" and "a-b" would both be
# accepted for one nonce.
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_+/", b"+/!!")


class SharedNonceService:
    """Issues and redeems nonces valid in every process forked after construction.

    Each process issues into the region chosen with :meth:`for_worker` (region 0
    by default) and redeems nonces from any region.
    """

    def __init__(self, lifetime_seconds: float, workers: int,
                 capacity_per_worker: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Create the shared pool; construct it in the parent, before forking the workers.

        ``clock`` must read the same timeline in every process: ``time.monotonic``
        (CLOCK_MONOTONIC, system-wide on Linux) does, and unlike ``time.time`` it is
        not moved by clock adjustments.
        """
        if not 1 <= workers <= 256:
            raise ValueError("workers must be between 1 and 256 (one byte in the nonce)")
        if not 1 <= capacity_per_worker < 2**32:
            raise ValueError("capacity_per_worker must be between 1 and 2**32 - 1")
        self.lifetime = lifetime_seconds
        self.workers = workers
        self.capacity_per_worker = capacity_per_worker
        self._now = clock
        self._region_size = _HEAD.size + capacity_per_worker * _SLOT.size
        # Anonymous mmap is MAP_SHARED: after fork, parent and children see one
        # memory, and fresh pages read as zeros, i.e. every slot not live.
        self._memory = mmap.mmap(-1, workers * self._region_size)
        # The fork context unlinks the semaphore's name at once and starts no
        # resource tracker; the children inherit the open semaphore through fork.
        self._lock = multiprocessing.get_context("fork").Lock()
        self._worker = 0
        self._region = 0

    def for_worker(self, index: int) -> SharedNonceService:
        """A view of the same pool whose :meth:`new` issues into region ``index``.

        A worker calls this once after the fork. Two processes may share a region
        (e.g. a respawned worker and its late predecessor): the ring head is in
        the shared memory too, so they never hand out the same slot at once.
        """
        if not 0 <= index < self.workers:
            raise ValueError(f"worker index {index} is not in 0..{self.workers - 1}")
        # Shares the mapping and the lock. Attributes set one by one, in the order
        # __init__ set them, keep the instance's compact layout, which the
        # interpreter reads fast; copy.copy would give it a plain dict.
        view = object.__new__(type(self))
        for name, value in vars(self).items():
            setattr(view, name, value)
        view._worker = index
        view._region = index * self._region_size
        return view

    def recover_lock(self, wait_seconds: float = 0.5) -> bool:
        """Free the lock if a process died holding it; True when it had to.

        The lock is held for microseconds, so failing to take it for
        ``wait_seconds`` means its holder is gone (a worker killed inside
        new() or redeem()); the semaphore may be released by any process. The
        supervisor calls this after a worker died, before starting another.
        """
        if self._lock.acquire(timeout=wait_seconds):
            self._lock.release()
            return False
        self._lock.release()
        return True

    def new(self) -> str:
        """A fresh nonce: 24 base64url characters."""
        random = os.urandom(_RANDOM_BYTES)
        expires = self._now() + self.lifetime
        memory, region = self._memory, self._region
        # Under the lock so that no reader sees a half-written slot and two
        # processes issuing into one region take different slots. acquire and
        # release are the semaphore's own C methods; ``with`` would go through
        # the Python-level wrapper (0.6 against 0.13 µs, twice per request).
        self._lock.acquire()
        try:
            (slot,) = _HEAD.unpack_from(memory, region)
            _SLOT.pack_into(memory, region + _HEAD.size + slot * _SLOT.size,
                            expires, True, random)
            _HEAD.pack_into(memory, region,
                            slot + 1 if slot + 1 < self.capacity_per_worker else 0)
        finally:
            self._lock.release()
        raw = _NONCE.pack(self._worker, slot, random)
        return binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE).decode("ascii")

    def redeem(self, nonce: str) -> bool:
        """True once for a nonce this pool issued that has not expired nor been dropped.

        Anything else (malformed, unknown, already redeemed) is False, never an
        exception.
        """
        if len(nonce) != _NONCE_CHARS:
            return False
        try:
            raw = binascii.a2b_base64(nonce.encode("ascii").translate(_FROM_URLSAFE),
                                      strict_mode=True)
        except (UnicodeEncodeError, binascii.Error):
            return False
        if len(raw) != _NONCE.size:  # e.g. '=' padding inside the 24 characters
            return False
        worker, slot, random = _NONCE.unpack(raw)
        if worker >= self.workers or slot >= self.capacity_per_worker:
            return False
        offset = worker * self._region_size + _HEAD.size + slot * _SLOT.size
        now = self._now()
        memory = self._memory
        # Compare and clear in one critical section: of two processes
        # redeeming the same nonce, only the first finds it live.
        self._lock.acquire()
        try:
            expires, live, stored = _SLOT.unpack_from(memory, offset)
            if not live or stored != random:
                return False
            _SLOT.pack_into(memory, offset, 0.0, False, _CLEARED)
        finally:
            self._lock.release()
        return bool(expires > now)

    async def consume(self, nonce: str) -> bool:
        """:meth:`redeem`, as the Nonces protocol awaits it."""
        return self.redeem(nonce)
