"""Orders, authorizations and challenges: creation, lookup and the validation outcome."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway import audit
from gateway.config import ProfileSettings, Settings
from gateway.core.held_start import HeldStart
from gateway.core.keys import account_key_weakness
from gateway.core.profiles import ProfilePolicy
from gateway.core.ratelimits.limiter import RateLimiter, Requester
from gateway.core.renewals import RenewalService
from gateway.core.signals import Signals
from gateway.errors import ErrorKind, GatewayError
from gateway.model.clock import Clock
from gateway.model.records import (
    DEACTIVATED,
    INVALID,
    PENDING,
    PROCESSING,
    READY,
    VALID,
    Account,
    Authorization,
    Challenge,
    EabKey,
    Identifier,
    Order,
    new_id,
)
from gateway.model.store import Insert, Store, Update
from gateway.validation.challenges import offered_for


@dataclass(frozen=True)
class NewOrder:
    """What a client asks for in a newOrder (RFC 8555 §7.4), parsed by its front end."""

    identifiers: tuple[Identifier, ...]
    profile: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    replaces: str | None = None  # an ARI certID (RFC 9773 §5)


def problem_dict(kind: ErrorKind, detail: str,
                 subproblems: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The stored form of an error on an order or challenge (rendered by the front end)."""
    out: dict[str, Any] = {"kind": kind.value, "detail": detail}
    if subproblems:
        out["subproblems"] = subproblems
    return out


class OrderService:
    """newOrder, order/authorization/challenge reads and the effects of a validation."""

    def __init__(self, settings: Settings, store: Store, clock: Clock, *,
                 trail: audit.AuditTrail | None = None,
                 profiles: ProfilePolicy | None = None,
                 limits: RateLimiter | None = None,
                 renewals: RenewalService | None = None) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.trail = trail or audit.AuditTrail(store, clock)
        self.profiles = profiles or ProfilePolicy(settings, store, self.trail)
        self.limits = limits or RateLimiter(settings.rate_limits, store, clock, self.trail)
        self.renewals = renewals or RenewalService(settings, store, clock, self.trail)
        # Called with (authz, challenge, account, hold, order as read then) when a
        # challenge starts processing (see gateway.core.held_start for the hold); may
        # return the validation's task, which respond_challenge waits on (bounded); the
        # task's result is the authorization as committed, if it got that far.
        self.on_challenge: Callable[[Authorization, Challenge, Account, HeldStart | None,
                                     Order | None],
                                    asyncio.Task[Authorization | None] | None] = \
            lambda *a: None
        # Challenges validated while their POST waits, before processing is committed:
        # a repeated POST joins the first one's validation instead of starting another.
        self._held: dict[str, tuple[HeldStart, asyncio.Task[Authorization | None]]] = {}
        # Polls held on an authorization being validated wake when its outcome commits.
        self.signals = Signals()

    def profile(self, name: str | None) -> ProfileSettings:
        """The named profile, or the default one; invalidProfile when unknown."""
        chosen = name or self.settings.acme.default_profile
        profile = self.settings.profiles.get(chosen)
        if profile is None:
            raise GatewayError(ErrorKind.INVALID_PROFILE,
                               f"unknown profile {chosen!r}; offered: "
                               f"{', '.join(sorted(self.settings.profiles))}")
        return profile

    async def new_order(self, account: Account, request: NewOrder) -> Order:
        """Check the request against policy and persist the order with its authorizations."""
        actor = audit.acme_actor(account.id)
        await self._check_account_key(account, actor)
        binding = await self._binding(account, actor)
        profile = await self.profiles.select(request.profile, actor=actor, binding=binding)
        idents = await self.profiles.check_identifiers(
            profile, list(request.identifiers), actor=actor, binding=binding)
        replaces = request.replaces
        if replaces is not None:  # RFC 9773 §5: checked, then recorded on the order
            replaces = await self.renewals.check_replaces(account, replaces, idents)
        charges = await self.limits.new_order(account.id, profile.name, idents)
        now = self.clock.now()
        order_id = new_id()
        authzs = [self._new_authz(account, order_id, i, now) for i in idents]
        order = Order(id=order_id, account_id=account.id, status=PENDING, identifiers=idents,
                      authz_ids=tuple(a.id for a in authzs), profile=profile.name,
                      expires=now + timedelta(seconds=self.settings.acme.order_lifetime_seconds),
                      created_at=now, not_before=request.not_before,
                      not_after=request.not_after, replaces=replaces)
        requested = self.trail.event(audit.REQUESTED, actor=actor, identifiers=audit.names(idents),
                                     profile=profile.name, ca=profile.ca, request_id=order_id,
                                     extra={"replaces": replaces} if replaces else None)
        await self.limits.pay(charges, [Insert(order), *(Insert(a) for a in authzs), requested],
                              Requester(actor, audit.names(idents), profile.name))
        return order

    async def _check_account_key(self, account: Account, actor: str) -> None:
        """An account whose key is weak (registered before a check judged it so) orders nothing."""
        weakness = account_key_weakness(account.thumbprint, account.jwk)
        if weakness is None:
            return
        detail = (f"the account key is weak: {weakness}; roll the account over to a new key "
                  "(key-change, RFC 8555 §7.3.5) before ordering")
        await self.trail.record(audit.POLICY_REFUSED, actor=actor,
                                result=ErrorKind.BAD_PUBLIC_KEY.value, detail=detail)
        raise GatewayError(ErrorKind.BAD_PUBLIC_KEY, detail)

    async def _binding(self, account: Account, actor: str) -> EabKey | None:
        """The EAB key that limits this account; refused once that key is revoked."""
        if account.eab_kid is None:
            return None
        key = await self.store.get_eab_key(account.eab_kid)
        if key is not None and key.status == "revoked":
            detail = (f"the external account key {key.id!r} this account was bound with has "
                      "been revoked; ask the operator for a new one")
            await self.trail.record(audit.UNAUTHORIZED, actor=actor, detail=detail,
                                    result=ErrorKind.UNAUTHORIZED.value)
            raise GatewayError(ErrorKind.UNAUTHORIZED, detail)
        return key

    def _challenge_types(self, ident: Identifier, wildcard: bool) -> list[str]:
        return offered_for(ident.type, wildcard, self.settings.validation.challenge_types)

    def _new_authz(self, account: Account, order_id: str, ident: Identifier,
                   now: datetime) -> Authorization:
        wildcard = ident.value.startswith("*.")
        base = Identifier(ident.type, ident.value[2:] if wildcard else ident.value)
        authz_id = new_id()
        types = self._challenge_types(base, wildcard)
        if not types:
            raise GatewayError(ErrorKind.REJECTED_IDENTIFIER,
                               f"no enabled challenge type can validate {ident.value!r}")
        challenges = tuple(Challenge(id=new_id(), authz_id=authz_id, type=t,
                                     token=secrets.token_urlsafe(32)) for t in types)
        return Authorization(
            id=authz_id, account_id=account.id, order_id=order_id, identifier=base,
            status=PENDING, wildcard=wildcard, challenges=challenges,
            expires=now + timedelta(seconds=self.settings.acme.authz_lifetime_seconds))

    async def get_order(self, order_id: str, account: Account | None = None) -> Order:
        """An order; with ``account``, only if that account owns it."""
        order = await self.store.get_order(order_id)
        if order is None:
            raise GatewayError(ErrorKind.NOT_FOUND, "no order at this URL")
        if account is not None and order.account_id != account.id:
            raise GatewayError(ErrorKind.UNAUTHORIZED, "this order belongs to another account")
        return await self._expire_order(order)

    async def _expire_order(self, order: Order) -> Order:
        if order.status in (PENDING, READY) and order.expires <= self.clock.now():
            expired = order.moved(INVALID, error=problem_dict(
                ErrorKind.MALFORMED, "the order expired before it was finalized"))
            if await self.store.apply([Update(expired, expect=order.status)]):
                return expired
            return await self.get_order(order.id)
        return order

    async def list_orders(self, account: Account, after: str, limit: int) -> list[str]:
        """Ids of the account's orders (a page of them)."""
        return await self.store.list_order_ids(account.id, after, limit)

    async def get_authz(self, authz_id: str, account: Account | None = None) -> Authorization:
        """An authorization; with ``account``, only if that account owns it."""
        authz = await self.store.get_authz(authz_id)
        if authz is None:
            raise GatewayError(ErrorKind.NOT_FOUND, "no authorization at this URL")
        if account is not None and authz.account_id != account.id:
            raise GatewayError(ErrorKind.UNAUTHORIZED,
                               "this authorization belongs to another account")
        return authz

    async def get_authz_for_challenge(self, challenge_id: str,
                                      account: Account) -> Authorization:
        """The authorization owning a challenge, if ``account`` owns it."""
        return _challenge_owned(await self.store.get_authz_by_challenge(challenge_id), account)

    async def deactivate_authz(self, account: Account, authz_id: str,
                               status: str | None) -> Authorization:
        """Client-requested deactivation (RFC 8555 §7.5.2): ``status`` must be "deactivated"."""
        authz = await self.get_authz(authz_id, account)
        if status != DEACTIVATED:
            raise GatewayError(ErrorKind.MALFORMED,
                               "the only status a client may set is \"deactivated\"")
        if authz.status not in (PENDING, VALID):
            raise GatewayError(ErrorKind.MALFORMED,
                               f"an authorization that is {authz.status} cannot be deactivated")
        done = authz.moved(DEACTIVATED)
        ops: list[Any] = [Update(done, expect=authz.status)]
        order = await self.store.get_order(authz.order_id)
        if order is not None and order.status == READY:
            ops.append(Update(order.moved(INVALID, error=self._authz_error(done)), expect=READY))
        if not await self.store.apply(ops):
            raise GatewayError(ErrorKind.MALFORMED, "the authorization changed meanwhile; retry")
        self.signals.notify(authz.id)
        if order is not None:
            await self.settle(order)
        return done

    async def respond_challenge(self, account: Account,
                                challenge_id: str) -> tuple[Authorization, Challenge]:
        """Start validating a challenge (RFC 8555 §7.5.1); repeated calls are harmless.

        With a wait (``challenge_wait_seconds``), ``processing`` is committed
        only if the validation outlasts it (see :mod:`gateway.core.held_start`).
        """
        # The order comes with it, for the outcome's commit (see record_validation).
        found = await self.store.get_authz_and_order_by_challenge(challenge_id)
        authz = _challenge_owned(found[0] if found else None, account)
        order = found[1] if found else None
        chall = authz.challenge(challenge_id)
        assert chall is not None
        if chall.status != PENDING or authz.status != PENDING:
            return authz, chall
        wait = self.settings.acme.challenge_wait_seconds
        joined = self._held.get(challenge_id)
        if joined is not None:  # a repeated POST while the first one waits
            return await self._answer(authz.with_challenge(joined[0].started), *joined, wait)
        if authz.expires <= self.clock.now():
            raise GatewayError(ErrorKind.MALFORMED, "the authorization has expired")
        started = chall.moved(PROCESSING)
        if wait <= 0:
            if not await self.store.apply([Update(started, expect=PENDING)]):
                return await self._fresh(authz.id, chall)
            authz = authz.with_challenge(started)
            self.on_challenge(authz, started, account, None, order)
            return authz, started
        hold = HeldStart(self.store, started)
        authz = authz.with_challenge(started)
        task = self.on_challenge(authz, started, account, hold, order)
        if task is None:  # nothing validates here: the started state is all there is to say
            return await self._released(hold, authz)
        self._held[challenge_id] = (hold, task)
        task.add_done_callback(lambda _: self._held.pop(challenge_id, None))
        return await self._answer(authz, hold, task, wait)

    async def _answer(self, authz: Authorization, hold: HeldStart,
                      task: asyncio.Task[Authorization | None],
                      wait: float) -> tuple[Authorization, Challenge]:
        """The challenge POST's answer: the outcome, if committed within ``wait``."""
        try:
            # A quick validation answers this POST with its outcome: the client's first
            # poll then finds the authorization decided instead of waiting Retry-After.
            await asyncio.wait((task,), timeout=wait)
        except asyncio.CancelledError:
            if not hold.recording:
                hold.release()  # the client is gone: the validation must still resume
            raise
        if not hold.recording:
            return await self._released(hold, authz)
        await asyncio.wait((task,))  # the outcome is being committed
        committed = None if task.cancelled() or task.exception() else task.result()
        if committed is None:
            committed = await self.get_authz(authz.id)
        chall = hold.started
        return committed, committed.challenge(chall.id) or chall

    async def _released(self, hold: HeldStart,
                        authz: Authorization) -> tuple[Authorization, Challenge]:
        """``processing`` committed, then answered; or the state that another writer left."""
        if await hold.release():
            return authz, hold.started
        return await self._fresh(authz.id, hold.started)

    async def _fresh(self, authz_id: str, chall: Challenge) -> tuple[Authorization, Challenge]:
        fresh = await self.get_authz(authz_id)
        return fresh, fresh.challenge(chall.id) or chall

    async def record_validation(self, authz: Authorization, chall: Challenge,
                                error: dict[str, Any] | None,
                                records: tuple[dict[str, Any], ...],
                                stored: str = PROCESSING,
                                order: Order | None = None) -> Authorization | None:
        """Persist a validation outcome and move the authorization and order along.

        ``stored`` is the challenge's status in the store, which the outcome's
        compare-and-set expects: ``processing``, or ``pending`` when the
        validation ended while its POST waited (see :mod:`gateway.core.held_start`).
        Returns the authorization as committed (None when another writer had
        already recorded this challenge), so a waiting challenge POST can answer
        without reading it back. ``order`` is the authorization's order as read
        when the challenge started (read here when not given). An older copy
        does no harm: what it is used for is the order's profile, authorizations
        and expiry, which never change, and its pending status, which every
        write of the order expects (compare-and-set), re-reading it if it moved.
        """
        if error is None:
            done = chall.moved(VALID, validated=self.clock.now(), records=records)
        else:
            done = chall.moved(INVALID, error=error, records=records)
        if order is None:
            order = await self.store.get_order(authz.order_id)
        tail: list[Any] = []
        if error is not None:  # counted against the account's next orders for this name
            tail += self.limits.validation_failed(authz.account_id, order.profile if order else "",
                                                  authz.identifier.value)
        tail.append(self._validated_event(authz, chall, error))  # built once: events are counted
        if authz.status == PENDING:
            # First against the authorization as the caller read it when the challenge
            # started (no read): its compare-and-set on status fails if it moved since (a
            # deactivation, a sibling challenge deciding it), and the outcome is then
            # recorded against a fresh read.
            recorded, decided = await self._record(authz, done, stored, order, tail)
            if recorded:
                return decided
        current = await self.store.get_authz(authz.id)
        return (await self._record(current, done, stored, order, tail))[1]

    def _validated_event(self, authz: Authorization, chall: Challenge,
                         error: dict[str, Any] | None) -> Insert:
        return self.trail.event(
            audit.VALIDATED, actor=audit.acme_actor(authz.account_id),
            identifiers=(authz.identifier.value,), request_id=authz.order_id,
            result="ok" if error is None else str(error.get("kind", "failed")),
            detail="" if error is None else str(error.get("detail", "")),
            extra={"challenge": chall.type})

    async def _record(self, current: Authorization | None, done: Challenge, stored: str,
                      order: Order | None, tail: list[Any]) -> tuple[bool, Authorization | None]:
        """Commit an outcome against ``current``: (committed?, the authorization as committed)."""
        ops: list[Any] = [Update(done, expect=stored)]
        decided = current.with_challenge(done) if current is not None else None
        moved = decided is not None and decided.status == PENDING
        if decided is not None and moved:
            decided = decided.moved(VALID if done.status == VALID else INVALID)
            ops.append(Update(decided, expect=PENDING))
        ops += tail
        # An order with this one authorization is settled in the same commit; with
        # siblings, settle() below reads them all after the commit (they may be
        # deciding concurrently, and the last to commit must see the others).
        settled = None
        if decided is not None and moved and order is not None \
                and order.status == PENDING and order.authz_ids == (decided.id,):
            settled = self._settled(order, [decided])
        if settled is not None and await self.store.apply([*ops, Update(settled, expect=PENDING)]):
            self.signals.notify(done.authz_id)
            return True, decided
        # Without the order's move (it changed since it was read, or has siblings).
        committed = await self.store.apply(ops)
        self.signals.notify(done.authz_id)  # committed here, or by the writer that came first
        if not committed:
            return False, None
        if order is not None:
            # settle's compare-and-set re-reads the order if it moved since.
            await self.settle(order)
        return True, decided

    async def settle(self, order: Order) -> Order:
        """Move a pending order to ready or invalid from its authorizations' statuses.

        Run after every authorization change and before finalize: validations of
        sibling authorizations finish concurrently, and whichever commits last
        sees them all decided here.
        """
        if order.status != PENDING:
            return order
        moved = self._settled(order, await self.store.get_authzs(order.authz_ids))
        if moved is None:
            return order
        if await self.store.apply([Update(moved, expect=PENDING)]):
            return moved
        fresh = await self.store.get_order(order.id)
        return fresh or order

    def _settled(self, order: Order, authzs: list[Authorization]) -> Order | None:
        """The pending order moved to ready or invalid by these authorizations, if decided."""
        failed = next((a for a in authzs if a.status in (INVALID, DEACTIVATED)), None)
        if failed is not None:
            return order.moved(INVALID, error=self._authz_error(failed))
        if len(authzs) == len(order.authz_ids) and all(a.status == VALID for a in authzs) \
                and order.expires > self.clock.now():
            return order.moved(READY)
        return None

    @staticmethod
    def _authz_error(authz: Authorization) -> dict[str, Any]:
        if authz.status == DEACTIVATED:
            return problem_dict(ErrorKind.UNAUTHORIZED,
                                f"the authorization for {authz.identifier.value} was deactivated")
        chall = next((c for c in authz.challenges if c.error), None)
        sub = dict(chall.error if chall and chall.error else
                   problem_dict(ErrorKind.UNAUTHORIZED, "validation failed"),
                   identifier=authz.identifier.to_json())
        return problem_dict(ErrorKind.UNAUTHORIZED,
                            f"authorization for {authz.identifier.value} failed", [sub])


def _challenge_owned(authz: Authorization | None, account: Account) -> Authorization:
    """The authorization of a challenge, if it exists and ``account`` owns it."""
    if authz is None:
        raise GatewayError(ErrorKind.NOT_FOUND, "no challenge at this URL")
    if authz.account_id != account.id:
        raise GatewayError(ErrorKind.UNAUTHORIZED, "this challenge belongs to another account")
    return authz
