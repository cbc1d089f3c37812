"""The serving gateway anchors its audit chain: a signed head, written outside the database.

Only the primary process writes anchors (several processes appending to one
log would interleave their ``prev`` links). It anchors on start (rows the CLI
wrote while the gateway was down), every ``[audit] anchor_interval_seconds``
and on a clean shutdown, each time only when the chain's head has moved. Each
anchor is appended to the anchor log, logged at INFO (a log shipper keeps a
copy off the machine) and, if configured, POSTed to a webhook. None of this
is on a request's path: a failing write is logged and retried at the next
interval, and issuance never waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp

from gateway.audit_anchor import Anchor, AnchorKey, append_line, last_line, line_digest
from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.model.clock import Clock
from gateway.model.store import Store

log = logging.getLogger("gateway.audit")


class AnchorWriter:
    """Appends a signed anchor of the audit chain's head whenever it has moved."""

    def __init__(self, settings: Settings, store: Store, clock: Clock) -> None:
        self.settings = settings
        self.audit = settings.audit
        self.store = store
        self.clock = clock
        self.log_path: Path = settings.anchor_log_file()
        self.key: AnchorKey | None = None
        self._last_line: str | None = None
        self._last_seq = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        # One anchor at a time: two writers would both link to the same previous line.
        self._writing = asyncio.Lock()
        self._posts: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Load (or create) the key, anchor what is new since the last run, start the timer."""
        self.key = await asyncio.to_thread(self._load_key)
        self._last_line = await asyncio.to_thread(last_line, self.log_path)
        previous = Anchor.parse(self._last_line) if self._last_line else None
        self._last_seq = previous.seq if previous else 0
        log.info("audit anchors: key %s, log %s", self.key.fingerprint, self.log_path)
        await self._anchor_logged()
        self._task = asyncio.create_task(self._loop(), name="audit-anchors")

    def _load_key(self) -> AnchorKey:
        path = self.settings.anchor_key_file()
        try:
            return AnchorKey.for_log(path, self.log_path)
        except (OSError, ValueError) as exc:
            raise ConfigError(self.settings.source, "audit.anchor_key_file",
                              f"cannot use the audit anchor key {path}: {exc}") from exc

    async def stop(self) -> None:
        """Stop the timer and anchor the final head (a clean shutdown leaves no gap)."""
        if self._task is None:
            return
        # Not cancelled: a write cancelled mid-way would still reach the file from its
        # thread, unrecorded here, and the final anchor would repeat its row.
        self._stopping.set()
        await self._task
        self._task = None
        await self._anchor_logged()
        if self._posts:
            await asyncio.gather(*self._posts, return_exceptions=True)

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), self.audit.anchor_interval_seconds)
            except TimeoutError:
                await self._anchor_logged()

    async def _anchor_logged(self) -> None:
        try:
            await self.anchor_now()
        except Exception:  # the next interval tries again; requests never wait on this
            log.exception("writing an audit anchor failed")

    async def anchor_now(self) -> Anchor | None:
        """Anchor the current head if it moved since the last anchor; the anchor written."""
        async with self._writing:
            return await self._anchor_head()

    async def _anchor_head(self) -> Anchor | None:
        assert self.key is not None, "start() loads the key"
        seq, head_hash = await self.store.audit_head()
        if seq <= self._last_seq:
            if seq < self._last_seq:
                log.error("the audit chain ends at row %d, before the newest anchor (row %d): "
                          "rows were removed; run `acme-gateway audit verify`",
                          seq, self._last_seq)
            return None
        at = self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        anchor = self.key.sign(seq, head_hash, at, line_digest(self._last_line))
        line = anchor.line()
        await asyncio.to_thread(append_line, self.log_path, line)
        self._last_line, self._last_seq = line, seq
        log.info("audit anchor: row %d", seq, extra={"fields": {"audit_anchor": line}})
        self._post(line)
        return anchor

    def _post(self, line: str) -> None:
        if not self.audit.anchor_webhook_url:
            return
        task = asyncio.create_task(self._send(self.audit.anchor_webhook_url, line))
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)

    async def _send(self, url: str, line: str) -> None:
        timeout = aiohttp.ClientTimeout(total=self.audit.anchor_webhook_timeout_seconds)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, \
                    session.post(url, data=line + "\n",
                                 headers={"Content-Type": "application/json"}) as resp:
                if resp.status >= 300:
                    log.warning("audit anchor webhook answered HTTP %d", resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("audit anchor webhook failed: %s", exc)
