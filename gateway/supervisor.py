"""``serve --workers N``: N forked processes serving one port (SO_REUSEPORT) and one store.

The parent does the first-start work once (store migrations, a local CA's key),
creates what the workers share (the nonce table and a count of account
changes, in shared memory), forks the workers, forwards SIGINT/SIGTERM to them,
and starts a worker again if one dies.
It never serves requests and holds no event loop or thread while it forks.

What the workers share and what they keep to themselves is listed in the
README ("Several processes"); in short: the store (SQLite in WAL mode handles
several writers), nonces (shared memory), CA jobs (claimed in the store before
one runs), metrics (files in one directory, merged by every scrape), while the
validation pacer and caches are per worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from gateway import metrics
from gateway.acme.nonces import Nonces
from gateway.acme.shared_nonces import SharedNonceService
from gateway.config import Settings
from gateway.core.role import ProcessRole
from gateway.errors import StartError
from gateway.model.changes import ChangeCounter

log = logging.getLogger("gateway.supervisor")

# A worker that dies this many times within the window stops the whole gateway:
# restarting it in a loop would hide a fault an operator must see.
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0
RESTART_DELAY_SECONDS = 1.0

Worker = Callable[[ProcessRole, Nonces], int]


def supervise(settings: Settings, count: int, run_worker: Worker) -> int:
    """Run ``count`` workers until SIGINT/SIGTERM; the exit status is 0 after a clean stop.

    A worker that cannot start (exit status ``StartError.EXIT_STATUS``) stops them all.
    """
    from gateway.app import prepare

    asyncio.run(prepare(settings))
    shared = SharedNonceService(settings.acme.nonce_lifetime_seconds, workers=count)
    metrics_dir = settings.server.data_dir / "metrics"
    metrics.prepare_shared_dir(metrics_dir)
    return _Supervisor(count, shared, run_worker, ChangeCounter(count), metrics_dir).run()


class _Supervisor:
    def __init__(self, count: int, nonces: SharedNonceService, run_worker: Worker,
                 account_changes: ChangeCounter, metrics_dir: Path) -> None:
        self.count = count
        self.nonces = nonces
        self.account_changes = account_changes
        self.metrics_dir = metrics_dir
        self.run_worker = run_worker
        self.children: dict[int, int] = {}  # pid → worker index
        self.deaths: dict[int, list[float]] = {}
        self.stopping = False
        self.failed = 0  # the exit status when the gateway stops on a fault

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for index in range(self.count):
                self._spawn(index)
            while self.children:
                try:
                    pid, status = os.wait()
                except ChildProcessError:
                    break
                except InterruptedError:  # a signal arrived; the handler did the work
                    continue
                index = self.children.pop(pid, -1)
                if index < 0:
                    continue
                if not self.stopping:
                    self._died(pid, index, status)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.failed

    def _spawn(self, index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the supervisor's code
            code = 1
            try:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, signal.SIG_DFL)
                changes = self.account_changes.for_process(index)
                code = self.run_worker(ProcessRole(index, self.count, changes,
                                                   self.metrics_dir),
                                       self.nonces.for_worker(index))
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = index
        log.info("worker %d started (pid %d)", index, pid)

    def _died(self, pid: int, index: int, status: int) -> None:
        metrics.forget_worker(self.metrics_dir, pid)
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == StartError.EXIT_STATUS:
            # The worker said why in one line; starting it again would fail the same way.
            self.failed = StartError.EXIT_STATUS
            self._stop(signal.SIGTERM)
            return
        now = time.monotonic()
        recent = [t for t in self.deaths.get(index, []) if now - t < RESTART_WINDOW_SECONDS]
        recent.append(now)
        self.deaths[index] = recent
        log.error("worker %d exited unexpectedly (%s)", index, _describe(status))
        if self.nonces.recover_lock():
            log.error("worker %d died holding the nonce lock; released it", index)
        if len(recent) >= MAX_RESTARTS:
            log.error("worker %d died %d times in %.0f s; stopping the gateway",
                      index, len(recent), RESTART_WINDOW_SECONDS)
            self.failed = 1
            self._stop(signal.SIGTERM)
            return
        time.sleep(RESTART_DELAY_SECONDS)
        if not self.stopping:
            self._spawn(index)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stop(signum)

    def _stop(self, signum: int) -> None:
        self.stopping = True
        for pid in list(self.children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
