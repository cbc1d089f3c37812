"""Approvals: requests of a profile with ``approval_required`` wait for a person.

When a CA job of such a profile first runs, the order is held: ``approval``
becomes ``pending``, the job's state ``approval`` (the scanner skips it), and
the client keeps polling a ``processing`` order (EST: 202). An approver acts
through ``acme-gateway approve|reject`` (straight on the store, from another
process) or the admin API: approval re-queues the job with ``run_at = now``,
so the running gateway's job scanner picks it up within one scan period;
rejection ends the order ``invalid`` with the approver's reason. Every step is
audited, and an optional webhook announces each held request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import aiohttp

from gateway import audit
from gateway.config import Settings
from gateway.errors import ErrorKind, GatewayError
from gateway.model.clock import Clock
from gateway.model.records import INVALID, PROCESSING, Job, Order
from gateway.model.store import Delete, Op, Store, Update

log = logging.getLogger("gateway.approvals")

PENDING_APPROVAL = "pending"
APPROVED = "approved"
REJECTED = "rejected"
JOB_AWAITING = "approval"


def actor_of(order: Order) -> str:
    """The requester of an order as the audit trail names it (EST ids already carry a scheme)."""
    return order.account_id if ":" in order.account_id else audit.acme_actor(order.account_id)


class ApprovalService:
    """Holds requests for approval and applies approvers' decisions."""

    def __init__(self, settings: Settings, store: Store, clock: Clock,
                 trail: audit.AuditTrail) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.trail = trail
        # Set by the core so that an approval made in this process runs the job at once.
        self.on_approved: Callable[[], None] = lambda: None
        self._notices: set[asyncio.Task[None]] = set()

    def hold_ops(self, order: Order, job: Job, ca: str) -> list[Op]:
        """The ops that park an order and its job until an approver acts."""
        held = replace(order, approval=PENDING_APPROVAL)
        parked = replace(job, state=JOB_AWAITING, run_at=None)
        return [Update(held, expect=PROCESSING), Update(parked), self.trail.event(
            audit.APPROVAL_PENDING, actor=actor_of(order),
            identifiers=audit.names(order.identifiers), profile=order.profile, ca=ca,
            result="pending", request_id=order.id)]

    def announce(self, order: Order) -> None:
        """POST the held request to the webhook, if one is configured (in the background)."""
        url = self.settings.admin.webhook_url
        if not url:
            return
        task = asyncio.create_task(self._post(url, order))
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    async def _post(self, url: str, order: Order) -> None:
        body = {"event": "approval_pending", "id": order.id, "requester": actor_of(order),
                "profile": order.profile, "identifiers": list(audit.names(order.identifiers)),
                "approve": f"acme-gateway approve {order.id}"}
        timeout = aiohttp.ClientTimeout(total=self.settings.admin.webhook_timeout_seconds)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, \
                    session.post(url, json=body) as resp:
                if resp.status >= 300:
                    log.warning("approval webhook answered HTTP %d", resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("approval webhook failed: %s", exc)

    async def pending(self, limit: int = 500) -> list[Order]:
        """Requests waiting for an approver, oldest first."""
        return await self.store.orders_awaiting_approval(limit)

    async def approve(self, request_id: str, approver: str) -> Order:
        """Release a held request to its CA."""
        order, job = await self._held(request_id, approver, audit.APPROVED)
        approved = replace(order, approval=APPROVED)
        queued = replace(job, state="queued", run_at=self.clock.now())
        ops: list[Op] = [Update(approved, expect=PROCESSING), Update(queued),
                         self._decision(audit.APPROVED, order, approver, "")]
        if not await self.store.apply(ops):
            raise GatewayError(ErrorKind.CONFLICT, f"request {request_id!r} changed meanwhile")
        self.on_approved()
        return approved

    async def reject(self, request_id: str, approver: str, reason: str) -> Order:
        """End a held request as invalid, with the approver's reason shown to the client."""
        if not reason.strip():
            raise GatewayError(ErrorKind.MALFORMED, "a rejection needs a reason for the requester")
        order, job = await self._held(request_id, approver, audit.REJECTED)
        error = {"kind": ErrorKind.UNAUTHORIZED.value,
                 "detail": f"the request was rejected by an approver: {reason}"}
        rejected = order.moved(INVALID, error=error, approval=REJECTED)
        ops: list[Op] = [Update(rejected, expect=PROCESSING), Delete(job),
                         self._decision(audit.REJECTED, order, approver, reason)]
        if not await self.store.apply(ops):
            raise GatewayError(ErrorKind.CONFLICT, f"request {request_id!r} changed meanwhile")
        return rejected

    async def _held(self, request_id: str, approver: str, event: str) -> tuple[Order, Job]:
        order = await self.store.get_order(request_id)
        job = await self.store.get_job(request_id) if order is not None else None
        if order is None or job is None or order.approval != PENDING_APPROVAL \
                or order.status != PROCESSING:
            state = "no such request" if order is None else \
                f"it is {order.status}" + (f", approval {order.approval}" if order.approval else "")
            detail = f"request {request_id!r} is not awaiting approval ({state}); " \
                     "list pending requests with `acme-gateway approvals`"
            await self.trail.record(event, actor=approver, result="refused", detail=detail,
                                    request_id=request_id)
            raise GatewayError(ErrorKind.NOT_FOUND, detail)
        return order, job

    def _decision(self, event: str, order: Order, approver: str, reason: str) -> Op:
        extra: dict[str, Any] = {"requester": actor_of(order)}
        return self.trail.event(event, actor=approver, identifiers=audit.names(order.identifiers),
                                profile=order.profile,
                                ca=self.settings.profiles[order.profile].ca
                                if order.profile in self.settings.profiles else "",
                                detail=reason, request_id=order.id, extra=extra)

    async def aclose(self) -> None:
        """Let webhook posts in flight finish (they are short and bounded by a timeout)."""
        if self._notices:
            await asyncio.gather(*self._notices, return_exceptions=True)
