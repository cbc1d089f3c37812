"""A challenge validated while its POST waits, before ``processing`` is committed.

A challenge POST starts the validation and waits for it (``[acme]
challenge_wait_seconds``). Most validations end within that wait: the
outcome is then committed straight from ``pending`` (one commit), and the
POST answers with it. Only a validation that outlasts the wait has its
``processing`` state committed, before the POST answers with it; the
validation then records its outcome against ``processing`` as usual.

Why this keeps every promise of the design:

- A client is told ``processing`` only once that state is committed, so a
  restart resumes the validation (``ValidationRunner.resume``) as it always did.
- Until the POST answers, nothing has been promised: a crash mid-validation
  leaves the challenge ``pending`` and the client, whose POST failed, posts
  it again. A POST whose client goes away before the answer commits
  ``processing`` on its way out, so the validation still resumes after a crash.
- One of the two commits happens, never both racing: the validation's
  outcome and the POST's deadline meet on the event loop's one thread, and
  whichever comes first decides (:attr:`HeldStart.recording` or
  :attr:`HeldStart.released`), without an await in between.
"""

from __future__ import annotations

import asyncio

from gateway.model.records import PENDING, PROCESSING, Challenge
from gateway.model.store import Store, Update


class HeldStart:
    """The state shared by a waiting challenge POST and the validation it started."""

    def __init__(self, store: Store, started: Challenge) -> None:
        self._store = store
        # The challenge moved to processing in memory; committed so only by release().
        self.started = started
        # The validation is committing its outcome from pending: the POST waits for that.
        self.recording = False
        # The commit of processing, once the POST stopped waiting for the outcome.
        self.released: asyncio.Future[bool] | None = None

    def release(self) -> asyncio.Future[bool]:
        """Commit ``processing`` (once; every caller gets the same commit's result).

        Called when the POST answers before the outcome is recorded. The
        commit runs as a task of its own: a POST cancelled while it waits
        (its client gone) still leaves the validation durable.
        """
        if self.released is None:
            self.released = asyncio.ensure_future(
                self._store.apply([Update(self.started, expect=PENDING)]))
        return self.released

    async def stored_status(self) -> str:
        """The challenge's status in the store, when the validation records its outcome.

        ``pending`` while the POST still waits (the outcome is then committed
        from it, and the POST waits for that commit), else ``processing``
        once its commit has ended (a failed one leaves another writer's
        status, which the outcome's compare-and-set then finds).
        """
        if self.released is None:
            self.recording = True
            return PENDING
        await asyncio.wait((self.released,))  # not cancelled with this validation
        return PROCESSING
