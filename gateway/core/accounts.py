"""ACME accounts: registration, lookup, contact updates, deactivation and key rollover."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from gateway import audit
from gateway.config import AcmeSettings
from gateway.core.eab import EabProof, EabService
from gateway.core.keys import check_account_key
from gateway.core.ratelimits.limiter import RateLimiter, Requester
from gateway.core.ratelimits.settings import RateLimitSettings
from gateway.errors import ErrorKind, GatewayError
from gateway.model.clock import Clock
from gateway.model.records import DEACTIVATED, VALID, Account, new_id
from gateway.model.store import Conflict, Insert, Op, Store, Update

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


@dataclass(frozen=True)
class NewAccount:
    """What a newAccount request asks for (RFC 8555 §7.3), parsed by its front end."""

    contact: tuple[str, ...] = ()
    terms_agreed: bool = False
    only_return_existing: bool = False


@dataclass(frozen=True)
class AccountUpdate:
    """A change to an account (RFC 8555 §7.3.2, §7.3.6); None leaves a field as it is."""

    contact: tuple[str, ...] | None = None
    status: str | None = None


def check_contacts(contact: tuple[str, ...]) -> tuple[str, ...]:
    """Only ``mailto:`` URLs with one plain address each (RFC 8555 §7.3)."""
    for url in contact:
        if not url.startswith("mailto:"):
            raise GatewayError(ErrorKind.UNSUPPORTED_CONTACT,
                               f"contact {url!r}: only mailto: URLs are supported")
        address = url[len("mailto:"):]
        if "?" in address or "," in address or not _EMAIL.match(address):
            raise GatewayError(ErrorKind.INVALID_CONTACT,
                               f"contact {url!r} is not a single valid e-mail address")
    return contact


def account_uri(base_url: str, account_id: str) -> str:
    """An account's URL, as CAA ``accounturi`` parameters name it (RFC 8657 §3).

    The one place the core spells an ACME URL: CAA records name accounts by it.
    """
    return f"{base_url}/acme/acct/{account_id}"

class AccountService:
    """Everything that creates or changes an ACME account."""

    def __init__(self, settings: AcmeSettings, store: Store, clock: Clock,
                 eab: EabService | None = None, trail: audit.AuditTrail | None = None, *,
                 limits: RateLimiter | None = None) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.eab = eab
        self.trail = trail or audit.AuditTrail(store, clock)
        self.limits = limits or RateLimiter(RateLimitSettings(), store, clock, self.trail)

    async def register(self, jwk: dict[str, Any], thumbprint: str, request: NewAccount,
                       eab_kid: str | None = None,
                       eab: EabProof | None = None) -> tuple[Account, bool]:
        """Create an account for this key, or return the existing one (created flag second).

        With ``eab`` (a binding whose wire form the front end checked), the MAC is
        verified and the key consumed in the same unit that creates the account.
        """
        agreed = request.terms_agreed
        check_account_key(jwk)  # before the lookup: a weak key gets nothing, not even its account
        existing = await self.store.get_account_by_thumbprint(thumbprint)
        if existing is not None:
            return existing, False
        if request.only_return_existing:
            raise GatewayError(ErrorKind.ACCOUNT_DOES_NOT_EXIST,
                               "no account exists with the provided key")
        contact = check_contacts(request.contact)
        if self.settings.terms_of_service and not agreed:
            raise GatewayError(ErrorKind.USER_ACTION_REQUIRED,
                               "you must agree to the terms of service "
                               f"({self.settings.terms_of_service}): set termsOfServiceAgreed")
        account_id = new_id()
        eab_ops = await self._external_account(eab, thumbprint)
        if eab is not None:
            eab_kid = eab.kid
        account = Account(id=account_id, thumbprint=thumbprint, jwk=jwk, contact=contact,
                          tos_agreed=agreed, created_at=self.clock.now(), eab_kid=eab_kid)
        created = self.trail.event(audit.ACCOUNT_CREATED, actor=audit.acme_actor(account_id),
                                   extra={"eab_kid": eab_kid} if eab_kid else None)
        try:
            if not await self.limits.pay(self.limits.new_account(),
                                         [Insert(account), *eab_ops, created],
                                         Requester(f"jwk:{thumbprint}")):
                raise GatewayError(ErrorKind.UNAUTHORIZED,
                                   f"externalAccountBinding: key {eab_kid!r} was used or revoked "
                                   "meanwhile")
        except Conflict:  # the same key registered concurrently: return that account
            raced = await self.store.get_account_by_thumbprint(thumbprint)
            if raced is None:
                raise
            return raced, False
        return account, True

    async def _external_account(self, eab: EabProof | None, thumbprint: str) -> list[Op]:
        """The ops that consume the EAB key, or [] when no binding is needed."""
        # No account exists yet: refusals name the key that asked (its RFC 7638 thumbprint).
        actor = f"jwk:{thumbprint}"
        if eab is None:
            if self.settings.external_account_required:
                await self.trail.record(audit.UNAUTHORIZED, actor=actor,
                                        result=ErrorKind.EXTERNAL_ACCOUNT_REQUIRED.value,
                                        detail="newAccount without externalAccountBinding")
                raise GatewayError(ErrorKind.EXTERNAL_ACCOUNT_REQUIRED,
                                   "this server requires an external account binding: ask the "
                                   "operator for a key id and HMAC key (acme-gateway eab create)")
            return []
        if self.eab is None:
            raise GatewayError(ErrorKind.MALFORMED, "external account binding is not enabled here")
        _key, ops = await self.eab.verify(eab, actor)
        return ops

    async def get(self, account_id: str) -> Account:
        """A valid account, or accountDoesNotExist / unauthorized."""
        account = await self.store.get_account(account_id)
        if account is None:
            raise GatewayError(ErrorKind.ACCOUNT_DOES_NOT_EXIST, "no account at this URL")
        if account.status != VALID:
            raise GatewayError(ErrorKind.UNAUTHORIZED, f"the account is {account.status}")
        return account

    async def update(self, account: Account, request: AccountUpdate) -> Account:
        """Apply a contact change and/or a deactivation request."""
        updated = account
        if request.contact is not None:
            updated = replace(updated, contact=check_contacts(request.contact))
        status = request.status
        if status is not None:
            if status != DEACTIVATED:
                raise GatewayError(ErrorKind.MALFORMED,
                                   "the only status a client may set is \"deactivated\"")
            updated = updated.moved(DEACTIVATED)
        if updated != account and not await self.store.apply([Update(updated, expect=VALID)]):
            raise GatewayError(ErrorKind.UNAUTHORIZED, "the account changed meanwhile; retry")
        return updated

    async def change_key(self, account: Account, new_jwk: dict[str, Any],
                         new_thumbprint: str) -> Account:
        """Roll the account over to a new key (RFC 8555 §7.3.5)."""
        check_account_key(new_jwk)
        holder = await self.store.get_account_by_thumbprint(new_thumbprint)
        if holder is not None:
            raise GatewayError(ErrorKind.CONFLICT, holder.id)
        updated = replace(account, jwk=new_jwk, thumbprint=new_thumbprint)
        try:
            applied = await self.store.apply([Update(updated, expect=VALID)])
        except Conflict as exc:
            raise GatewayError(ErrorKind.CONFLICT, "") from exc
        if not applied:
            raise GatewayError(ErrorKind.UNAUTHORIZED, "the account is no longer valid")
        return updated
