"""Operator tasks: work a person must do at a CA because the gateway cannot.

The one kind today: a revocation that the CA's connector cannot perform (AD CS
through certsrv has no revocation page). The task says which certificate, why,
and where to revoke it. Tasks live in the audit trail itself — an
``operator_task`` event opens one, an ``operator_task_done`` event closes it —
so they are as tamper-evident as every other decision, and need no table of
their own. ``acme-gateway tasks`` and ``GET /admin/tasks`` list the open ones;
closing a revocation task records the certificate as revoked here too.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, replace
from typing import Any

from gateway import audit
from gateway.errors import ErrorKind, GatewayError
from gateway.model.clock import Clock
from gateway.model.store import Store, Update

TASK_OPENED = "operator_task"
TASK_DONE = "operator_task_done"
REVOKE = "revoke"
_PAGE = 1000


@dataclass(frozen=True)
class OperatorTask:
    """One open task: what to do, on which certificate, at which CA, and where."""

    id: str
    kind: str
    ca: str
    serial: str
    reason: int
    instructions: str
    opened_at: str
    certificate_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for the admin API and the CLI."""
        return {"id": self.id, "kind": self.kind, "ca": self.ca, "serial": self.serial,
                "reason": self.reason, "instructions": self.instructions,
                "opened_at": self.opened_at, "certificate_id": self.certificate_id}


def _extra(row: dict[str, Any]) -> dict[str, Any]:
    raw = row.get("extra") or {}
    value = json.loads(raw) if isinstance(raw, str) else raw
    return value if isinstance(value, dict) else {}


def _task(row: dict[str, Any]) -> OperatorTask:
    extra = _extra(row)
    return OperatorTask(id=str(extra.get("task_id", "")), kind=str(extra.get("kind", "")),
                        ca=str(row.get("ca", "")), serial=str(extra.get("serial", "")),
                        reason=int(extra.get("reason", 0)), instructions=str(row.get("detail")),
                        opened_at=str(row.get("at", "")),
                        certificate_id=str(extra.get("certificate_id", "")))


class OperatorTasks:
    """Open, list and close operator tasks, all through the audit trail."""

    def __init__(self, store: Store, clock: Clock, trail: audit.AuditTrail) -> None:
        self.store = store
        self.clock = clock
        self.trail = trail

    async def _rows(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        after = 0
        while page := await self.store.audit_rows(after, _PAGE):
            found += [r for r in page if r.get("event") in (TASK_OPENED, TASK_DONE)]
            after = int(page[-1]["seq"])
        return found

    async def open_tasks(self) -> list[OperatorTask]:
        """Tasks opened and not yet done, oldest first."""
        rows = await self._rows()
        done = {_extra(r).get("task_id") for r in rows if r["event"] == TASK_DONE}
        return [_task(r) for r in rows
                if r["event"] == TASK_OPENED and _extra(r).get("task_id") not in done]

    async def revocation_task(self, *, ca: str, serial: str, reason: int, certificate_id: str,
                              instructions: str, actor: str) -> OperatorTask:
        """The open revocation task for this certificate, opened now if there is none."""
        for task in await self.open_tasks():
            if task.kind == REVOKE and task.ca == ca and task.serial == serial:
                return task
        task_id = secrets.token_hex(6)
        extra = {"task_id": task_id, "kind": REVOKE, "serial": serial, "reason": reason,
                 "certificate_id": certificate_id}
        await self.store.apply([self.trail.event(TASK_OPENED, actor=actor, ca=ca,
                                                 result="open", detail=instructions,
                                                 extra=extra)])
        return OperatorTask(task_id, REVOKE, ca, serial, reason, instructions,
                            self.clock.now().isoformat(), certificate_id)

    async def done(self, task_id: str, actor: str, note: str = "") -> OperatorTask:
        """Close a task; a revocation task records the certificate as revoked here too."""
        task = next((t for t in await self.open_tasks() if t.id == task_id), None)
        if task is None:
            raise GatewayError(ErrorKind.NOT_FOUND, f"no open operator task {task_id!r}")
        ops: list[Any] = [self.trail.event(TASK_DONE, actor=actor, ca=task.ca, detail=note,
                                           extra={"task_id": task.id, "serial": task.serial})]
        cert = await self.store.get_certificate(task.certificate_id) \
            if task.certificate_id else None
        if task.kind == REVOKE and cert is not None and cert.revoked_at is None:
            revoked = replace(cert, revoked_at=self.clock.now(), revocation_reason=task.reason)
            ops += [Update(revoked), self.trail.event(
                audit.REVOKED, actor=actor, ca=cert.ca, request_id=cert.order_id,
                extra={"serial": cert.serial, "reason": task.reason, "task_id": task.id})]
        await self.store.apply(ops)
        return task
