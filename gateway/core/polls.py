"""POST-as-GET reads of orders, authorizations and challenges, held while a change is near.

A client polls an authorization while its challenge is validated and an
order while the CA issues. Each poll is a signed request (nonce, signature,
account, read, render), and a client polling every 50 ms sends twenty of
them a second for an answer that changes once. While something is in flight
for the resource (a challenge ``processing``, an order ``processing``), a
poll is therefore answered when the resource changes, or with its unchanged
state after ``[acme] poll_wait_seconds`` (0: at once).

A held poll wakes at once on a change made in this process
(:class:`~gateway.core.signals.Signals`, the issuance job's event) and
re-reads the store then. The change may also be committed by another
process (``serve --workers N``) or node (PostgreSQL), which sends no signal
here: the store is re-read every ``SHARED_RECHECK_SECONDS`` when other
processes serve it, and every ``RECHECK_SECONDS`` otherwise (for the rare
writer from outside, such as an operator's command). What is answered is
always what the store held when it was last read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from gateway.config import Settings
from gateway.core.issuance import IssuanceService
from gateway.core.orders import OrderService
from gateway.core.role import ProcessRole
from gateway.model.records import PENDING, PROCESSING, Account, Authorization, Order

# How stale a held poll may be about a change committed by another serving process
# or node; a re-read is one lookup, far cheaper than the client's request it replaces.
SHARED_RECHECK_SECONDS = 0.2
# The same with one serving process, where every validation and CA job signals here.
RECHECK_SECONDS = 1.0

R = TypeVar("R", Order, Authorization)


def validating(authz: Authorization) -> bool:
    """A pending authorization with a challenge being validated: its outcome is near."""
    return authz.status == PENDING and any(c.status == PROCESSING for c in authz.challenges)


class PollService:
    """The reads a polling client makes, answered at a change or after a bound."""

    def __init__(self, settings: Settings, orders: OrderService, issuance: IssuanceService,
                 role: ProcessRole | None = None) -> None:
        self.settings = settings
        self.orders = orders
        self.issuance = issuance
        shared = role is not None and role.shared
        self.recheck = SHARED_RECHECK_SECONDS if shared else RECHECK_SECONDS

    async def order(self, order_id: str, account: Account) -> Order:
        """The account's order; while it is processing, held until it changes (bounded)."""
        found = await self.orders.get_order(order_id, account)
        if found.status != PROCESSING:
            return found
        return await held(found, lambda: self.orders.get_order(order_id, account),
                          lambda t: self.issuance.wait_for(order_id, t),
                          self.settings.acme.poll_wait_seconds, self.recheck)

    async def authz(self, authz_id: str, account: Account) -> Authorization:
        """The account's authorization; while validated, held until it changes (bounded)."""
        found = await self.orders.get_authz(authz_id, account)
        if not validating(found):  # most polls: answered without a hold's set-up
            return found
        return await self._held(found, lambda: self.orders.get_authz(authz_id, account))

    async def challenge(self, challenge_id: str, account: Account) -> Authorization:
        """The authorization of the account's challenge, held like :meth:`authz`."""
        found = await self.orders.get_authz_for_challenge(challenge_id, account)
        if not validating(found):
            return found
        return await self._held(
            found, lambda: self.orders.get_authz_for_challenge(challenge_id, account))

    async def _held(self, found: Authorization,
                    read: Callable[[], Awaitable[Authorization]]) -> Authorization:
        """``found``, being validated, held until the validation's outcome (bounded)."""
        authz_id = found.id

        async def signalled(timeout: float) -> None:
            await self.orders.signals.wait(authz_id, timeout)

        return await held(found, read, signalled, self.settings.acme.poll_wait_seconds,
                          self.recheck)


async def held(first: R, read: Callable[[], Awaitable[R]],
               signalled: Callable[[float], Awaitable[object]], bound: float,
               recheck: float = SHARED_RECHECK_SECONDS) -> R:
    """``first`` re-read until it differs or ``bound`` seconds pass; the last state read.

    ``signalled(t)`` returns when this process committed a change (or after at
    most ``t`` s, or at once when it cannot know); the store is read after it
    and at least every ``recheck`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while (left := deadline - loop.time()) > 0:
        step_end = loop.time() + min(left, recheck)
        await signalled(step_end - loop.time())
        fresh = await read()
        if fresh != first:
            return fresh
        if (rest := step_end - loop.time()) > 0:  # signalled() returned early, nothing changed
            await asyncio.sleep(rest)
    return first
