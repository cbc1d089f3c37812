"""The validation authority: one engine that runs every challenge type.

It owns the DNS stub (:mod:`dnswire`, the configured resolvers) and the
checkers. No connection is ever made to a name: every name is resolved by the
stub, every address passes the network guard, and the connection goes to that
address (:mod:`targets`). Connections are opened per attempt and closed at its
end, so nothing is pooled between applicants. Bounds:

- ``concurrency``: attempts in flight at once, over all targets;
- ``per_target_concurrency``: attempts in flight against one identifier, so one
  slow or hostile applicant cannot take every slot;
- ``attempt_timeout_seconds``: the whole of one attempt (DNS, connect, body);
- :class:`Pacer`: attempts started per event-loop turn, so that a burst does
  not stall the ACME handlers sharing the loop.

Failures the network caused (timeouts, refused connections, SERVFAIL) are
retried up to ``attempts`` times with exponential backoff, as RFC 8555 §8.2
allows; a wrong answer is final at once. Slots are not held while backing off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from gateway.errors import ErrorKind
from gateway.validation import ChallengeTask, ValidationFailure, ValidationOutcome
from gateway.validation.attempt import Attempt, ChallengeError
from gateway.validation.caa import CaaChecker
from gateway.validation.challenges import CHALLENGE_TYPES, DNS_01, HTTP_01
from gateway.validation.deadlines import DeadlineQueue
from gateway.validation.dns01 import Dns01Checker
from gateway.validation.dnsclient import DnsClient, make_resolver
from gateway.validation.http01 import Http01Checker
from gateway.validation.netguard import NetworkGuard
from gateway.validation.pacer import Pacer
from gateway.validation.settings import ValidationSettings
from gateway.validation.slots import Slots
from gateway.validation.tlsalpn01 import TlsAlpn01Checker

log = logging.getLogger("gateway.validation")

T = TypeVar("T")
MAX_BACKOFF_SECONDS = 30.0
# Attempts started per event-loop turn (see pacer.py); measured with loadtest/validation_burst.
STARTS_PER_LOOP_TURN = 2
Sleep = Callable[[float], Awaitable[None]]
Check = Callable[[Attempt, Callable[[], float]], Awaitable[None]]


class _TargetSlots(Slots):
    """The slots of one identifier, and how many callers hold or wait for them."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.users = 0


class ValidationAuthority:
    """Implements :class:`gateway.validation.Validator`; await :meth:`start` in the loop first."""

    def __init__(
        self,
        settings: ValidationSettings,
        *,
        sleep: Sleep = asyncio.sleep,
        starts_per_turn: int = STARTS_PER_LOOP_TURN,
    ) -> None:
        self._settings = settings
        self._sleep = sleep
        self._guard = NetworkGuard(
            settings.blocked_networks,
            allow_loopback=settings.allow_loopback,
            allow_private=settings.allow_private,
        )
        self._global = Slots(settings.concurrency)
        self._targets: dict[str, _TargetSlots] = {}
        # Every attempt has the same timeout, so their deadlines fall due in order (deadlines.py).
        self._deadlines = DeadlineQueue()
        self._pacer = Pacer(starts_per_turn)
        self._http01: Http01Checker | None = None
        self._dns01: Dns01Checker | None = None
        self._tlsalpn01: TlsAlpn01Checker | None = None
        self._caa: CaaChecker | None = None

    @property
    def guard(self) -> NetworkGuard:
        """The network guard every connection passes."""
        return self._guard

    async def start(self) -> None:
        """Set up the DNS stub and the checkers (call inside the running loop)."""
        s = self._settings
        dns = DnsClient(make_resolver(s.resolvers, s.attempt_timeout_seconds))
        self._http01 = Http01Checker(dns, self._guard, s)
        self._dns01 = Dns01Checker(dns)
        self._tlsalpn01 = TlsAlpn01Checker(dns, self._guard, s)
        self._caa = CaaChecker(dns, s.caa_identities)

    async def aclose(self) -> None:
        """Stop accepting work; safe to call twice. Each attempt closes its own sockets."""
        self._http01 = None
        self._dns01 = None
        self._tlsalpn01 = None
        self._caa = None

    async def validate(self, task: ChallengeTask) -> ValidationOutcome:
        """Run the challenge with retries, then CAA for DNS identifiers.

        Every failure, even a bug in a checker, comes back as the outcome's
        ``failure``; only calling before :meth:`start` raises (RuntimeError).
        """
        records: list[dict[str, Any]] = []
        failure = await self._with_retries(task.identifier_value, self._check_for(task), records)
        if failure is None and task.identifier_type == "dns":
            failure = await self._caa_check(
                task.identifier_value, task.wildcard, task.account_uri, task.challenge_type, records
            )
        self._log(task, failure, records)
        return ValidationOutcome(failure=failure, records=tuple(records))

    async def check_caa(
        self, identifier_value: str, wildcard: bool, account_uri: str, method: str
    ) -> ValidationFailure | None:
        """Check CAA for a DNS identifier (IP identifiers have no CAA); None permits issuance."""
        return await self._caa_check(identifier_value, wildcard, account_uri, method, [])

    async def _caa_check(
        self,
        name: str,
        wildcard: bool,
        account_uri: str,
        method: str,
        records: list[dict[str, Any]],
    ) -> ValidationFailure | None:
        caa = self._require(self._caa)
        if not caa.applies(name):
            return None  # no lookups to make: skip the slots, pacing and timers of an attempt

        async def run(attempt: Attempt, remaining: Callable[[], float]) -> None:
            await caa.check(name, wildcard, account_uri, method, attempt)

        return await self._with_retries(name, run, records)

    def _check_for(self, task: ChallengeTask) -> Check:
        refusal = self._refusal(task)
        if refusal is not None:
            return _failing(refusal)
        # One checker per challenge type (gateway.validation.challenges names them).
        if task.challenge_type == HTTP_01.name:
            http01 = self._require(self._http01)
            return lambda attempt, remaining: http01.check(task, attempt, remaining)
        if task.challenge_type == DNS_01.name:
            dns01 = self._require(self._dns01)
            return lambda attempt, remaining: dns01.check(task, attempt)
        tlsalpn01 = self._require(self._tlsalpn01)
        return lambda attempt, remaining: tlsalpn01.check(task, attempt, remaining)

    def _refusal(self, task: ChallengeTask) -> ChallengeError | None:
        kind = CHALLENGE_TYPES.get(task.challenge_type)
        if kind is None:
            return ChallengeError(
                ErrorKind.MALFORMED, f"unknown challenge type {task.challenge_type!r}"
            )
        if task.identifier_type not in ("dns", "ip"):
            return ChallengeError(
                ErrorKind.UNSUPPORTED_IDENTIFIER,
                f"identifier type {task.identifier_type!r} is not supported",
            )
        if task.wildcard and not kind.wildcards:
            return ChallengeError(
                ErrorKind.MALFORMED,
                f"a wildcard name can only be validated with dns-01, not {task.challenge_type}"
                " (RFC 8555 §7.1.3)",
            )
        return None

    async def _with_retries(
        self, key: str, check: Check, records: list[dict[str, Any]]
    ) -> ValidationFailure | None:
        attempts = self._settings.attempts
        for number in range(1, attempts + 1):
            attempt = Attempt(number)
            error = await self._attempt(key, check, attempt)
            records.extend(attempt.records)
            if error is None:
                return None
            if not error.retriable or number == attempts:
                return ValidationFailure(error.kind, _with_attempts(error.detail, number))
            backoff = self._settings.retry_backoff_seconds * 2 ** (number - 1)
            await self._sleep(min(backoff, MAX_BACKOFF_SECONDS))
        raise AssertionError("unreachable: attempts is at least 1")

    async def _attempt(self, key: str, check: Check, attempt: Attempt) -> ChallengeError | None:
        key = key.lower()
        target = self._target_slot(key)
        try:
            # The per-target slot first, then a global one: queued work holds no global slot.
            # Each is taken by a plain call when free (the usual case), awaited only when not.
            if not target.try_take():
                await target.take()
            try:
                if not self._global.try_take():
                    await self._global.take()
                try:
                    if not self._pacer.try_admit():
                        await self._pacer.admit()
                    error = await self._bounded(check, attempt)
                finally:
                    self._global.give()
            finally:
                target.give()
        finally:
            self._leave_target(key, target)
        if error is not None and attempt.records and "error" not in attempt.records[-1]:
            attempt.records[-1]["error"] = f"{error.kind.value}: {error.detail}"
        return error

    async def _bounded(self, check: Check, attempt: Attempt) -> ChallengeError | None:
        """Run ``check`` within the attempt timeout; its failure, or None when it passed."""
        timeout = self._settings.attempt_timeout_seconds
        deadlines = self._deadlines
        loop = deadlines.loop
        deadline = loop.time() + timeout
        try:
            with deadlines.timeout_at(deadline):
                await check(attempt, lambda: deadline - loop.time())
        except TimeoutError:
            return attempt.timeout_error(timeout)
        except ChallengeError as exc:
            return exc
        except Exception:  # a bug must fail one validation, not the core's job runner
            log.exception("validation check raised unexpectedly")
            return ChallengeError(ErrorKind.SERVER_INTERNAL, "internal error while validating")
        return None

    def _target_slot(self, key: str) -> _TargetSlots:
        """The slots of one identifier (made on first use), with this caller counted in."""
        slot = self._targets.get(key)
        if slot is None:
            slot = self._targets[key] = _TargetSlots(self._settings.per_target_concurrency)
        slot.users += 1
        return slot

    def _leave_target(self, key: str, slot: _TargetSlots) -> None:
        """Count this caller out; the last one out drops the slots."""
        slot.users -= 1
        if slot.users == 0:
            del self._targets[key]

    def _require(self, part: T | None) -> T:
        if part is None:
            raise RuntimeError("ValidationAuthority.start() must be awaited before use")
        return part

    def _log(
        self, task: ChallengeTask, failure: ValidationFailure | None, records: list[dict[str, Any]]
    ) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        result = "valid" if failure is None else f"invalid ({failure.kind.value})"
        attempts = max((r.get("attempt", 1) for r in records), default=1)
        log.info(
            "validation %s %s:%s %s after %d attempt(s)",
            task.challenge_type,
            task.identifier_type,
            task.identifier_value,
            result,
            attempts,
        )


def _failing(error: ChallengeError) -> Check:
    async def check(attempt: Attempt, remaining: Callable[[], float]) -> None:
        raise error

    return check


def _with_attempts(detail: str, attempts: int) -> str:
    return detail if attempts == 1 else f"{detail} (after {attempts} attempts)"
