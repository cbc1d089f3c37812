"""Finalize, the persisted CA jobs that follow it, certificate download and revocation.

Finalize checks the CSR, stores the order as ``processing`` together with a job
row, and starts the job at once; the client is answered when the CA has
finished or after ``finalize_wait_seconds``, whichever comes first. A job is
unique per order (a table constraint) and runs in at most one task of this
process, so a repeated finalize or a restart never sends a request twice on
our side. A job has two budgets (:mod:`gateway.core.budgets`): the time it
may wait for the CA's decision, and the transient failures it rides out; only
an explicit refusal by the CA ends an order with the CA's reason. Calls to a CA
whose circuit is open (:mod:`gateway.core.ca_health`) wait without being made.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from connectors.base import (
    CAProfile,
    Connector,
    ConnectorError,
    Issued,
    IssueRequest,
    IssueResult,
    Pending,
    Rejected,
    SubmissionInDoubt,
    SubmissionLookup,
)
from connectors.der import certificate_spki
from gateway import audit
from gateway.config import ProfileSettings, Settings
from gateway.core import budgets
from gateway.core import csr as csrs
from gateway.core.accounts import account_uri
from gateway.core.approvals import PENDING_APPROVAL, ApprovalService, actor_of
from gateway.core.ca_health import CAHealth
from gateway.core.chains import chain_pem
from gateway.core.compliance import policy_record
from gateway.core.keys import account_key_spki, spki_sha256
from gateway.core.orders import OrderService, problem_dict
from gateway.core.profiles import ProfilePolicy
from gateway.core.ratelimits.limiter import RateLimiter
from gateway.core.recent import RecentCertificates
from gateway.core.revocation import RevocationService, serial_hex
from gateway.core.role import ProcessRole
from gateway.core.tasks import OperatorTasks
from gateway.errors import ErrorKind, GatewayError
from gateway.model.clock import Clock
from gateway.model.records import (
    INVALID,
    PROCESSING,
    READY,
    VALID,
    Account,
    Certificate,
    Job,
    Order,
    new_id,
)
from gateway.model.store import Delete, Insert, Op, Store, StoreUnavailable, Update
from gateway.validation import Validator

log = logging.getLogger("gateway.jobs")

# Set in a job's ``extra`` once its CSR passed the profile rules (ACME does it at finalize).
POLICY_CHECKED = "checked"


def _csr_key(csr_der: bytes, parsed: csrs.ParsedCSR | None) -> tuple[PublicKeyTypes, str]:
    """An order's CSR key and its SPKI hash: as parsed at intake, else read from ``csr_der``
    (a job run from the store; its CSR was judged at intake, only its key is needed)."""
    if parsed is not None:
        return parsed.public_key, parsed.spki_sha256
    key = x509.load_der_x509_csr(csrs.der_for_ca(csr_der)).public_key()
    return key, spki_sha256(key)


def _certifies(leaf: x509.Certificate, leaf_der: bytes, csr_der: bytes,
               csr: csrs.ParsedCSR | None) -> tuple[bool, str]:
    """Whether ``leaf`` is for the order's CSR key, and that key's SPKI hash.

    A leaf whose SPKI is byte for byte the one the intake encoded certifies that
    key without loading it again (what a CA that copies the key, like the local
    CA, returns); any other encoding is compared as keys.
    """
    if csr is not None and certificate_spki(leaf_der) == csr.spki_der:
        return True, csr.spki_sha256
    want, spki = _csr_key(csr_der, csr)
    # Key equality compares the points as decoded; equal keys have the same SPKI
    # hash, so the CSR's is the certificate's too.
    return leaf.public_key() == want, spki


async def settled_within(task: asyncio.Future[Any], timeout: float) -> None:
    """Wait until ``task`` is done or ``timeout`` seconds have passed, whichever is first.

    ``asyncio.wait`` for one task, without its sets and per-call checks (it runs
    for every finalize): the task is never cancelled and its outcome never raised.
    """
    if task.done():
        return
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def release(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    timer = loop.call_later(timeout, release)
    task.add_done_callback(release)
    try:
        await waiter
    finally:
        timer.cancel()
        task.remove_done_callback(release)


class IssuanceService:
    """Finalize, CA jobs, certificates and revocation."""

    def __init__(self, settings: Settings, store: Store, clock: Clock,
                 connectors: Mapping[str, Connector], orders: OrderService,
                 validator: Validator, *, trail: audit.AuditTrail | None = None,
                 profiles: ProfilePolicy | None = None,
                 approvals: ApprovalService | None = None,
                 role: ProcessRole | None = None, health: CAHealth | None = None,
                 limits: RateLimiter | None = None) -> None:
        self.settings = settings
        self.role = role or ProcessRole()
        self.jobs = settings.jobs
        self.store = store
        self.clock = clock
        self.connectors = connectors
        self.orders = orders
        self.validator = validator
        self.trail = trail or audit.AuditTrail(store, clock)
        self.profiles = profiles or ProfilePolicy(settings, store, self.trail)
        self.approvals = approvals or ApprovalService(settings, store, clock, self.trail)
        self.limits = limits or RateLimiter(settings.rate_limits, store, clock, self.trail)
        self.health = health or CAHealth(connectors, clock, self.jobs.breaker_threshold,
                                         self.jobs.breaker_cooldown_seconds)
        self.tasks = OperatorTasks(store, clock, self.trail)
        self.revocation = RevocationService(store, clock, connectors, self.trail, self.tasks)
        self.recent = RecentCertificates(clock)  # what this process issued, for the download
        # Orders whose job waits on its CA (pending, or retrying after a failure) → the CA.
        self.waiting: dict[str, str] = {}
        self._running: dict[str, asyncio.Task[Order | None]] = {}
        self._claims: dict[str, Job] = {}  # order id → the job as claimed by this process
        self._wake = asyncio.Event()
        self._scanner: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        """CA jobs running now in this process."""
        return len(self._running)

    def jobs_waiting(self) -> dict[str, int]:
        """Jobs this process knows to be waiting on each CA."""
        return dict(Counter(self.waiting.values()))

    # -- finalize --------------------------------------------------------------------

    async def finalize(self, account: Account, order_id: str, csr_der: bytes) -> Order:
        """Check the CSR, persist the job, and wait briefly for a fast CA."""
        order = await self.orders.settle(await self.orders.get_order(order_id, account))
        if order.status in (PROCESSING, VALID):
            return order  # a repeated finalize is answered with the order, not an error
        if order.status != READY:
            raise GatewayError(ErrorKind.ORDER_NOT_READY,
                               f"the order is {order.status}, not ready; "
                               "complete its authorizations first")
        profile = self.orders.profile(order.profile)
        parsed = await self._check_csr(order, account, csr_der, profile)
        await self._recheck_caa(order, account)
        job = self.admitted_job(order.id, self.clock.now())
        started = order.moved(PROCESSING, csr_der=csr_der)
        if not await self.store.apply([Update(started, expect=READY), Insert(job)]):
            return await self.orders.get_order(order_id, account)
        task = self.run_now(job, started, parsed)
        wait = self.settings.acme.finalize_wait_seconds
        if task is None:
            await self.wait_for(order.id, wait)
        elif wait > 0:
            # A fast CA answers this POST with the valid order the job committed.
            await settled_within(task, wait)
            if task.done() and not task.cancelled() and task.exception() is None:
                issued = task.result()
                if issued is not None:
                    return issued
        return await self.orders.get_order(order_id, account)

    async def _check_csr(self, order: Order, account: Account, csr_der: bytes,
                         profile: ProfileSettings) -> csrs.ParsedCSR:
        actor = audit.acme_actor(account.id)
        try:
            parsed = csrs.parse_csr(csr_der)
            if parsed.spki_sha256 == account_key_spki(account.thumbprint, account.jwk):
                raise GatewayError(ErrorKind.BAD_CSR,
                                   "the CSR's key must differ from the account key")
            csrs.check_names(parsed, order.identifiers)
        except GatewayError as exc:
            await self.trail.record(audit.POLICY_REFUSED, actor=actor, profile=profile.name,
                                    identifiers=audit.names(order.identifiers), ca=profile.ca,
                                    result=exc.kind.value, detail=exc.detail, request_id=order.id)
            raise
        await self.profiles.check_csr(profile, parsed, actor=actor, request_id=order.id)
        return parsed

    async def _recheck_caa(self, order: Order, account: Account) -> None:
        limit = self.settings.validation.caa_recheck_after_seconds
        if not self.settings.validation.caa_identities:
            return
        now = self.clock.now()
        for authz in await self.store.get_authzs(order.authz_ids):
            done = [c for c in authz.challenges if c.status == VALID and c.validated]
            if authz.identifier.type != "dns" or not done:
                continue
            validated = done[0].validated
            assert validated is not None
            if (now - validated).total_seconds() <= limit:
                continue
            failure = await self.validator.check_caa(
                authz.identifier.value, authz.wildcard,
                account_uri(self.settings.server.public_base_url(), account.id), done[0].type)
            if failure is not None:
                raise GatewayError(failure.kind, failure.detail)

    def admitted_job(self, order_id: str, now: datetime, job_id: str | None = None) -> Job:
        """The CA job of an order whose CSR has passed its profile's rules.

        The one intake of every protocol (ACME finalize, EST and SCEP enrollment):
        the job is marked checked, so the runner neither parses nor judges the
        CSR again; only a job stored unmarked (by an older version) is.
        """
        return Job(id=job_id or new_id(), order_id=order_id, run_at=self.first_run_at(now),
                   extra={"policy": POLICY_CHECKED})

    def requested_event(self, order: Order, profile: ProfileSettings) -> Op:
        """The ``requested`` audit event of an order admitted without a newOrder (EST, SCEP)."""
        return self._event(audit.REQUESTED, order, profile.ca)

    def first_run_at(self, now: datetime) -> datetime:
        """``run_at`` of a job that its creator starts at once.

        With several processes the job is created claimed (see
        :meth:`run_due`): the others' scans leave it alone until the claim runs out.
        """
        if self.role.shared:
            return now + timedelta(seconds=self.jobs.claim_seconds)
        return now

    async def run_due(self, job: Job) -> None:
        """Start a due job found in the store, after claiming it if processes share the store."""
        if job.order_id in self._running:
            return
        if self.role.shared:
            until = self.clock.now() + timedelta(seconds=self.jobs.claim_seconds)
            if not await self.store.claim_job(job, until):
                return  # another process claimed it (or it finished) meanwhile
            job = replace(job, run_at=until)
        self.run_now(job)

    async def wait_for(self, order_id: str, timeout: float) -> None:
        """Wait until the order's job has finished in this process, or ``timeout``."""
        task = self._running.get(order_id)
        if task is not None and timeout > 0:
            await settled_within(task, timeout)

    # -- the job runner --------------------------------------------------------------

    async def start(self) -> None:
        """Start scanning for due jobs (this also resumes jobs left by a restart).

        Of several processes only the primary scans; the others run the jobs
        they create themselves.
        """
        if self.role.primary:
            self._scanner = asyncio.create_task(self._scan_loop(), name="ca-jobs")

    async def stop(self) -> None:
        """Stop scanning and cancel jobs in flight; they resume on the next start."""
        tasks = list(self._running.values())
        if self._scanner is not None:
            tasks.append(self._scanner)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Hand interrupted jobs back at once rather than when their claim runs out.
        for job in list(self._claims.values()):
            try:
                await self.store.claim_job(job, self.clock.now())
            except Exception:  # the claim then simply runs out
                log.exception("releasing the claim on job %s failed", job.id)
        self._claims.clear()

    async def _scan_loop(self) -> None:
        while True:
            try:
                for job in await self.store.due_jobs(self.clock.now(), 200):
                    await self.run_due(job)
            except StoreUnavailable:
                pass  # the store logs the outage once; the next scan tries again
            except Exception:  # keep scanning whatever went wrong with one scan
                log.exception("scanning for due CA jobs failed")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.jobs.scan_period_seconds)
            except TimeoutError:
                pass

    def wake(self) -> None:
        """Scan for due jobs now (e.g. one an approver has just released)."""
        self._wake.set()

    def run_now(self, job: Job, order: Order | None = None,
                csr: csrs.ParsedCSR | None = None) -> asyncio.Task[Order | None] | None:
        """Start a job that the caller has just persisted, without waiting for the next scan.

        ``order`` is the job's order as the caller just committed it (saves a read).
        ``csr`` is that order's CSR as the caller parsed and judged it, given only by
        the intake that created the job: the run then neither parses it again nor
        has its CA look for an earlier submission (there can be none).
        A job already running in this process is left alone (None): one task per
        order. The task's result is the order once valid, if this run issued it.
        """
        if job.order_id in self._running:
            return None
        if self.role.shared:
            self._claims[job.order_id] = job
        task = asyncio.create_task(self._run_job(job, order, csr), name=f"ca-job-{job.order_id}")
        self._running[job.order_id] = task
        task.add_done_callback(functools.partial(self._finished_task, job.order_id))
        return task

    def _finished_task(self, order_id: str, _task: asyncio.Task[Order | None]) -> None:
        self._running.pop(order_id, None)
        self._claims.pop(order_id, None)

    async def _run_job(self, job: Job, order: Order | None = None,
                       csr: csrs.ParsedCSR | None = None) -> Order | None:
        if order is None or order.id != job.order_id:
            order = await self.store.get_order(job.order_id)
        if order is None or order.status != PROCESSING or order.csr_der is None:
            self.waiting.pop(job.order_id, None)
            await self.store.apply([Delete(job)])
            return None
        if order.approval == PENDING_APPROVAL:
            return None  # parked until an approver acts (only a stale scan gets here)
        profile = self.orders.profile(order.profile)
        if not job.ca_ref:
            admitted = await self._admit(order, job, profile)
            if admitted is None:
                return None
            job = admitted
        if job.ca_ref and budgets.wait_expired(job, self.clock.now(), profile.max_wait):
            await self._fail(order, job, ErrorKind.CA_UNAVAILABLE, self._expired(job, profile))
            return None
        blocked = self.health.blocked_until(profile.ca)
        if blocked is not None:  # the CA's circuit is open: wait without calling it
            self.waiting[order.id] = profile.ca
            await self.store.apply([Update(budgets.deferred(job, blocked))])
            return None
        if csr is not None and csr.der != order.csr_der:
            csr = None  # not this order's CSR: parse the stored one where needed
        try:
            result = await self._call_ca(order, job, profile, csr)
        except ConnectorError as exc:
            await self._ca_failed(order, job, exc, exc.retryable, profile.ca)
            return None
        except Exception as exc:  # a connector bug is treated as transient, and logged
            log.exception("connector %s failed unexpectedly", profile.ca)
            await self._ca_failed(order, job, exc, True, profile.ca)
            return None
        self.health.answered(profile.ca)
        return await self._handle_result(order, job, result, profile.ca, csr)

    async def _call_ca(self, order: Order, job: Job, profile: ProfileSettings,
                       csr: csrs.ParsedCSR | None = None) -> IssueResult:
        """Poll a request the CA holds; else submit, after looking for a submission in doubt."""
        connector = self.connectors[profile.ca]
        if job.ca_ref:
            return await connector.poll(job.ca_ref)
        request = self._issue_request(order, profile, csr)
        hint = job.extra.get(budgets.IN_DOUBT)
        if isinstance(hint, str) and isinstance(connector, SubmissionLookup):
            found = await connector.lookup(request, hint)
            if found is not None:
                return found
        return await connector.issue(request)

    @staticmethod
    def _expired(job: Job, profile: ProfileSettings) -> str:
        hours = profile.max_wait.total_seconds() / 3600
        return (f"the CA did not decide within {hours:g} hour(s) (profile {profile.name!r}, "
                f"max_wait_hours); its request {job.ca_ref} may still be open there: "
                "cancel it in the CA, then order again")

    async def _admit(self, order: Order, job: Job, profile: ProfileSettings) -> Job | None:
        """Before a first CA call: the profile gate and the approval hold.

        A job stored without the mark of :meth:`admitted_job` (by an older
        version) gets its CSR checked here, so a profile rule binds every job; a
        refusal ends the order with the rule's reason. A profile needing approval
        parks the order here.
        """
        ops: list[Op] = []
        if job.extra.get("policy") != POLICY_CHECKED:
            if not await self._csr_admitted(order, job, profile):
                return None
            job = replace(job, extra={**job.extra, "policy": POLICY_CHECKED})
            ops += [Update(job), self._event(audit.REQUESTED, order, profile.ca)]
        if profile.approval_required and order.approval is None:
            ops += self.approvals.hold_ops(order, job, profile.ca)
            if await self.store.apply(ops):
                self.approvals.announce(order)
            return None
        if ops:
            await self.store.apply(ops)
        return job

    async def _csr_admitted(self, order: Order, job: Job, profile: ProfileSettings) -> bool:
        """The profile's CSR rules; a refusal ends the order with the rule's reason."""
        assert order.csr_der is not None
        try:
            parsed = csrs.parse_csr(order.csr_der)
        except GatewayError as exc:
            await self._fail(order, job, exc.kind, exc.detail, event=audit.POLICY_REFUSED)
            return False
        try:
            await self.profiles.check_csr(profile, parsed, actor=actor_of(order),
                                          request_id=order.id)
        except GatewayError as exc:  # already audited as policy_refused by the checker
            await self._fail(order, job, exc.kind, exc.detail, event=None)
            return False
        return True

    def _event(self, event: str, order: Order, ca: str, result: str = "ok", detail: str = "",
               extra: dict[str, Any] | None = None) -> Op:
        return self.trail.event(event, actor=actor_of(order),
                                identifiers=audit.names(order.identifiers), profile=order.profile,
                                ca=ca, result=result, detail=detail, request_id=order.id,
                                extra=extra)

    def _issue_request(self, order: Order, profile: ProfileSettings,
                       csr: csrs.ParsedCSR | None) -> IssueRequest:
        """The CA's request; ``csr`` (see :meth:`run_now`) travels along, parsed."""
        dns = tuple(i.value for i in order.identifiers if i.type == "dns")
        ips = tuple(i.value for i in order.identifiers if i.type == "ip")
        first = order.identifiers[0].value if order.identifiers else None
        assert order.csr_der is not None
        return IssueRequest(
            request_id=order.id,
            csr_der=csrs.der_for_ca(order.csr_der) if csr is None else csr.ca_der,
            profile=CAProfile(name=profile.name, validity=profile.validity,
                              ekus=profile.ekus, params=profile.ca_params),
            dns_names=dns, ip_addresses=ips,
            subject_cn=first if profile.cn_from_first_san else None,
            csr=None if csr is None else csr.csr,
            csr_key=None if csr is None else csr.public_key,
            first_submission=csr is not None,
            csr_spki=None if csr is None else csr.spki_der)

    async def _handle_result(self, order: Order, job: Job, result: IssueResult,
                             ca: str, csr: csrs.ParsedCSR | None = None) -> Order | None:
        """Persist the CA's answer; the valid order when it issued and that was committed."""
        if isinstance(result, Issued):
            return await self._store_issued(order, job, result, ca, csr)
        if isinstance(result, Pending):
            self.waiting[order.id] = ca
            await self.store.apply([Update(budgets.after_pending(job, result, self.clock.now(),
                                                                 self.jobs))])
        elif isinstance(result, Rejected):
            await self._fail(order, job, ErrorKind.UNAUTHORIZED,
                             f"the CA refused the request: {result.reason}")
        return None

    async def _ca_failed(self, order: Order, job: Job, exc: Exception, retryable: bool,
                         ca: str) -> None:
        if retryable:  # a profile's own misconfiguration says nothing about the CA's health
            self.health.failed(ca, str(exc) or type(exc).__name__)
        hint = exc.hint if isinstance(exc, SubmissionInDoubt) else None
        again = budgets.after_failure(job, str(exc), retryable, self.clock.now(), self.jobs, hint)
        if again is not None:
            self.waiting[order.id] = ca
            log.warning("CA call for order %s failed (%d in a row), retrying at %s: %s",
                        order.id, again.attempts, again.run_at, exc)
            await self.store.apply([Update(again)])
            return
        await self._fail(order, job, ErrorKind.CA_UNAVAILABLE,
                         f"the CA could not issue after {job.attempts + 1} attempt(s): {exc}")

    async def _fail(self, order: Order, job: Job, kind: ErrorKind, detail: str,
                    event: str | None = audit.FAILED) -> None:
        self.waiting.pop(order.id, None)
        failed = order.moved(INVALID, error=problem_dict(kind, detail))
        ops: list[Op] = [Update(failed, expect=PROCESSING), Delete(job)]
        if event is not None:
            ca = self.orders.profile(order.profile).ca if order.profile in self.settings.profiles \
                else ""
            ops.append(self._event(event, order, ca, kind.value, detail))
        await self.store.apply(ops)

    async def _store_issued(self, order: Order, job: Job, issued: Issued,
                            ca: str, csr: csrs.ParsedCSR | None = None) -> Order | None:
        leaf = x509.load_der_x509_certificate(issued.leaf_der)
        assert order.csr_der is not None
        same_key, spki = _certifies(leaf, issued.leaf_der, order.csr_der, csr)
        if not same_key:
            await self._fail(order, job, ErrorKind.SERVER_INTERNAL,
                             "the CA returned a certificate for a different key")
            return None
        cert = Certificate(
            id=new_id(), order_id=order.id, account_id=order.account_id,
            serial=serial_hex(leaf), leaf_der=issued.leaf_der,
            chain_pem=chain_pem(issued.leaf_der, issued.chain_der),
            not_before=leaf.not_valid_before_utc, not_after=leaf.not_valid_after_utc,
            spki_sha256=spki, ca=ca)
        self.waiting.pop(order.id, None)
        done = order.moved(VALID, certificate_id=cert.id)
        lifetime = (cert.not_after - cert.not_before).total_seconds()
        facts = {"serial": cert.serial, "validity_days": round(lifetime / 86400, 2),
                 "duration_s": round((self.clock.now() - order.created_at).total_seconds(), 3),
                 "policy": policy_record(self.orders.profile(order.profile),
                                         self.settings.audit.max_validity_days)}
        if await self.store.apply([Insert(cert), Update(done, expect=PROCESSING), Delete(job),
                                   self._event(audit.ISSUED, order, ca, extra=facts),
                                   *self.limits.certificate_issued(order)]):
            self.recent.add(cert)
            return done
        return None

    # -- certificates ----------------------------------------------------------------

    async def get_certificate(self, cert_id: str, account: Account | None) -> Certificate:
        """A certificate for download; with ``account``, only if that account owns it.

        Just after issuance it may be this process's copy (:mod:`gateway.core.recent`),
        whose revocation fields are those of the moment it was stored.
        """
        cert = self.recent.get(cert_id) or await self.store.get_certificate(cert_id)
        if cert is None:
            raise GatewayError(ErrorKind.NOT_FOUND, "no certificate at this URL")
        if account is not None and cert.account_id != account.id:
            raise GatewayError(ErrorKind.UNAUTHORIZED,
                               "this certificate belongs to another account")
        return cert

    async def revoke(self, cert_der: bytes, reason: Any, account: Account | None,
                     jwk: dict[str, Any] | None) -> Certificate:
        """Revoke by the owning account's key or by the certificate's own key (§7.6)."""
        return await self.revocation.revoke(cert_der, reason, account, jwk)
