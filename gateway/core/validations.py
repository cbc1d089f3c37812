"""Runs challenge validations as background tasks and resumes them after a restart.

A challenge in ``processing`` is its own persisted job: if the process stops
mid-validation, :meth:`ValidationRunner.resume` starts it again on the next
start, so a client polling the authorization eventually gets an answer. A
validation that ends while its challenge POST still waits never had its
``processing`` committed: nothing was promised yet (see
:mod:`gateway.core.held_start`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway.config import Settings
from gateway.core import accounts
from gateway.core.held_start import HeldStart
from gateway.core.orders import OrderService, problem_dict
from gateway.errors import ErrorKind
from gateway.model.records import PROCESSING, Account, Authorization, Challenge, Order
from gateway.model.store import Store, StoreUnavailable
from gateway.validation import ChallengeTask, Validator

log = logging.getLogger("gateway.validation")


def key_authorization(token: str, thumbprint: str) -> str:
    """RFC 8555 §8.1: token || '.' || base64url(JWK thumbprint)."""
    return f"{token}.{thumbprint}"


class ValidationRunner:
    """Owns the validation tasks in flight."""

    def __init__(self, settings: Settings, store: Store, orders: OrderService,
                 validator: Validator) -> None:
        self.settings = settings
        self.store = store
        self.orders = orders
        self.validator = validator
        self._tasks: set[asyncio.Task[Authorization | None]] = set()
        # Nodes sharing the store: challenge ids validating here, and those seen
        # processing elsewhere at the last look (see adopt_orphans).
        self._mine: set[str] = set()
        self._suspects: set[str] = set()
        self._watcher: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        """Validations running now."""
        return len(self._tasks)

    def account_uri(self, account_id: str) -> str:
        """The account URL as CAA accounturi parameters name it (RFC 8657)."""
        return accounts.account_uri(self.settings.server.public_base_url(), account_id)

    def start(self, authz: Authorization, chall: Challenge, account: Account,
              hold: HeldStart | None = None,
              order: Order | None = None) -> asyncio.Task[Authorization | None]:
        """Validate in the background.

        Without ``hold`` the caller has already persisted ``processing``; with
        it, the caller's POST waits and ``hold`` says what the store holds when
        the outcome is recorded (see :mod:`gateway.core.held_start`). The task
        ends once the outcome is committed, with the authorization as
        committed, so a caller may wait on it (bounded) instead of reading it back.
        ``order``, when the caller read it, saves the outcome a read of it.
        """
        task = asyncio.create_task(self._run(authz, chall, account.thumbprint, account.id,
                                             hold, order))
        self._tasks.add(task)
        self._mine.add(chall.id)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self._mine.discard(chall.id))
        return task

    async def _run(self, authz: Authorization, chall: Challenge, thumbprint: str,
                   account_id: str, hold: HeldStart | None,
                   order: Order | None) -> Authorization | None:
        task = ChallengeTask(
            identifier_type=authz.identifier.type, identifier_value=authz.identifier.value,
            challenge_type=chall.type, token=chall.token,
            key_authorization=key_authorization(chall.token, thumbprint),
            account_uri=self.account_uri(account_id), wildcard=authz.wildcard)
        try:
            outcome = await self.validator.validate(task)
        except asyncio.CancelledError:
            # Shutting down: the challenge stays processing and resumes next start (a held
            # one is released as processing by its POST, still waiting).
            raise
        except Exception as exc:  # a validator bug must not leave the client waiting forever
            log.exception("validation of %s crashed", chall.id)
            crash = problem_dict(ErrorKind.SERVER_INTERNAL, f"validation failed: {exc}")
            return await self._record(authz, chall, crash, (), hold, order)
        error: dict[str, Any] | None = None
        if outcome.failure is not None:
            error = problem_dict(outcome.failure.kind, outcome.failure.detail)
        return await self._record(authz, chall, error, outcome.records, hold, order)

    async def _record(self, authz: Authorization, chall: Challenge,
                      error: dict[str, Any] | None, records: tuple[dict[str, Any], ...],
                      hold: HeldStart | None, order: Order | None) -> Authorization | None:
        stored = PROCESSING if hold is None else await hold.stored_status()
        return await self.orders.record_validation(authz, chall, error, records, stored, order)

    async def resume(self) -> int:
        """Restart validations that were in flight when the process stopped."""
        count = 0
        for authz in await self.store.processing_challenges():
            account = await self.store.get_account(authz.account_id)
            if account is None:
                continue
            for chall in authz.challenges:
                if chall.status == "processing":
                    self.start(authz, chall, account)
                    count += 1
        return count

    async def adopt_orphans(self) -> int:
        """Start here the validations a dead node left ``processing``; how many.

        Several nodes share the store, and a validation runs in the node that
        accepted the challenge. One still processing at two looks a lease
        apart, and not running here, is presumed orphaned: validations end
        within their attempt timeouts, far shorter than a lease. Should its
        node still be alive after all, both record an outcome and the
        compare-and-set keeps the first.
        """
        found = {chall.id: (authz, chall) for authz in await self.store.processing_challenges()
                 for chall in authz.challenges if chall.status == "processing"}
        orphans = [found[i] for i in found.keys() & self._suspects if i not in self._mine]
        self._suspects = found.keys() - self._mine
        for authz, chall in orphans:
            account = await self.store.get_account(authz.account_id)
            if account is not None:
                log.warning("validation of challenge %s was left by another node; "
                            "running it here", chall.id)
                self.start(authz, chall, account)
        return len(orphans)

    def watch_orphans(self, period_seconds: float) -> None:
        """Call :meth:`adopt_orphans` every ``period_seconds`` until :meth:`stop`."""

        async def watch() -> None:
            while True:
                await asyncio.sleep(period_seconds)
                try:
                    await self.adopt_orphans()
                except StoreUnavailable:
                    pass  # the store logs the outage once; look again next period
                except Exception:  # look again next period whatever went wrong
                    log.exception("looking for orphaned validations failed")

        self._watcher = asyncio.create_task(watch(), name="orphaned-validations")

    async def stop(self) -> None:
        """Cancel validations in flight (they resume on the next start)."""
        tasks = [*self._tasks, *([self._watcher] if self._watcher is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

