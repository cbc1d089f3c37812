"""Wire forms of ACME resources: URLs and JSON bodies (RFC 8555 §7.1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache
from json.encoder import encode_basestring_ascii as _quoted
from typing import Any

from gateway import jsontext
from gateway.acme import problems
from gateway.config import Settings
from gateway.core.ari import Window
from gateway.model.records import Account, Authorization, Challenge, Order

PREFIX = "/acme"


def rfc3339(value: datetime) -> str:
    """A timestamp in the form ACME clients parse (UTC, 'Z', whole seconds)."""
    # The fields as isoformat's first 19 characters give them (whatever the offset or
    # fraction), formatted by hand: isoformat and strftime cost twice as much, and an
    # f-string with format specs more than this.
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (  # noqa: UP031
        value.year, value.month, value.day, value.hour, value.minute, value.second)


@dataclass(frozen=True)
class Urls:
    """Absolute URLs of every resource, relative to the base the client used."""

    base: str

    def path(self, path: str) -> str:
        """An absolute URL for a path."""
        return f"{self.base}{path}"

    @cached_property
    def directory(self) -> str:
        """The directory URL."""
        return self.path(f"{PREFIX}/directory")

    @cached_property
    def index_link(self) -> str:
        """The ``Link: rel="index"`` value every ACME answer carries (RFC 8555 §7.1)."""
        return f'<{self.directory}>;rel="index"'

    @cached_property
    def _account_prefix(self) -> str:
        return self.path(f"{PREFIX}/acct/")

    def account(self, account_id: str) -> str:
        """An account URL (the ``kid`` clients sign with)."""
        return self.path(f"{PREFIX}/acct/{account_id}")

    def orders(self, account_id: str) -> str:
        """An account's orders list."""
        return self.path(f"{PREFIX}/acct/{account_id}/orders")

    def order(self, order_id: str) -> str:
        """An order URL."""
        return self.path(f"{PREFIX}/order/{order_id}")

    def authz(self, authz_id: str) -> str:
        """An authorization URL."""
        return self.path(f"{PREFIX}/authz/{authz_id}")

    def challenge(self, challenge_id: str) -> str:
        """A challenge URL."""
        return self.path(f"{PREFIX}/chall/{challenge_id}")

    @cached_property
    def quoted_challenge_prefix(self) -> str:
        """The challenge URLs' common start as JSON string text, without the closing quote."""
        return _quoted(self.path(f"{PREFIX}/chall/"))[:-1]

    def certificate(self, cert_id: str, chain: int = 0) -> str:
        """A certificate URL: the default chain, or alternate chain number ``chain`` (1, 2 …)."""
        alternate = f"/{chain}" if chain else ""
        return self.path(f"{PREFIX}/cert/{cert_id}{alternate}")

    def account_id(self, kid: str) -> str | None:
        """The account id in a ``kid``, if it is one of our account URLs."""
        prefix = self._account_prefix
        if not kid.startswith(prefix):
            return None
        rest = kid[len(prefix):]
        return rest if rest and "/" not in rest else None


@lru_cache(maxsize=64)
def urls_at(base: str) -> Urls:
    """The :class:`Urls` of one base, made once: a server answers under few names.

    Bounded, since the base may come from the client's Host header.
    """
    return Urls(base)


def directory(urls: Urls, settings: Settings) -> dict[str, Any]:
    """The directory object with its ``meta``."""
    meta: dict[str, Any] = {
        "externalAccountRequired": settings.acme.external_account_required,
        "profiles": {name: p.description or f"certificates from CA {p.ca!r}"
                     for name, p in settings.profiles.items()},
    }
    if settings.acme.terms_of_service:
        meta["termsOfService"] = settings.acme.terms_of_service
    if settings.acme.website:
        meta["website"] = settings.acme.website
    if settings.validation.caa_identities:
        meta["caaIdentities"] = list(settings.validation.caa_identities)
    return {
        "newNonce": urls.path(f"{PREFIX}/new-nonce"),
        "newAccount": urls.path(f"{PREFIX}/new-account"),
        "newOrder": urls.path(f"{PREFIX}/new-order"),
        "revokeCert": urls.path(f"{PREFIX}/revoke-cert"),
        "keyChange": urls.path(f"{PREFIX}/key-change"),
        "renewalInfo": urls.path(f"{PREFIX}/renewal-info"),
        "meta": meta,
    }


def account(urls: Urls, acct: Account) -> dict[str, Any]:
    """An account object."""
    body: dict[str, Any] = {"status": acct.status, "contact": list(acct.contact),
                            "orders": urls.orders(acct.id), "key": acct.jwk}
    if acct.tos_agreed:
        body["termsOfServiceAgreed"] = True
    if acct.created_at is not None:
        body["createdAt"] = rfc3339(acct.created_at)
    return body


def renewal_info(window: Window) -> dict[str, Any]:
    """A renewalInfo object (RFC 9773 §4.2)."""
    body: dict[str, Any] = {"suggestedWindow": {"start": rfc3339(window.start),
                                                "end": rfc3339(window.end)}}
    if window.explanation_url:
        body["explanationURL"] = window.explanation_url
    return body


# Orders, authorizations and challenges are written straight as JSON text: one is
# rendered on every poll, and building dicts then walking them again in the encoder
# cost about twice what writing the text does. Every string value goes through the
# encoder's own quoting; tests/acme/reference_render.py has the same resources as
# plain objects, and the tests check the text is exactly their compact JSON.


def challenge_text(urls: Urls, c: Challenge) -> str:
    """:func:`challenge` as JSON text."""
    # JSON quoting goes character by character: the quoted prefix and the quoted id,
    # less the quotes where they meet, are the quoted URL.
    url = urls.quoted_challenge_prefix + _quoted(c.id)[1:]
    text = (f'{{"type":{_quoted(c.type)},"url":{url},'
            f'"status":{_quoted(c.status)},"token":{_quoted(c.token)}')
    if c.validated:
        text += f',"validated":"{rfc3339(c.validated)}"'
    if c.error:
        text += f',"error":{jsontext.compact(problems.from_stored(c.error))}'
    if c.records:
        text += f',"validationRecord":{jsontext.compact(list(c.records))}'
    return text + "}"


def authz_text(urls: Urls, a: Authorization) -> str:
    """:func:`authz` as JSON text."""
    challs = a.challenges
    if a.status == "valid":
        challs = tuple(c for c in challs if c.status == "valid") or challs
    ident = a.identifier
    return (f'{{"identifier":{{"type":{_quoted(ident.type)},"value":{_quoted(ident.value)}}},'
            f'"status":{_quoted(a.status)},"expires":"{rfc3339(a.expires)}",'
            f'"challenges":[{",".join([challenge_text(urls, c) for c in challs])}]'
            + (',"wildcard":true}' if a.wildcard else "}"))


def order_text(urls: Urls, o: Order) -> str:
    """:func:`order` as JSON text."""
    idents = ",".join([f'{{"type":{_quoted(i.type)},"value":{_quoted(i.value)}}}'
                       for i in o.identifiers])
    authzs = ",".join([_quoted(urls.authz(a)) for a in o.authz_ids])
    text = (f'{{"status":{_quoted(o.status)},"expires":"{rfc3339(o.expires)}",'
            f'"identifiers":[{idents}],"authorizations":[{authzs}],'
            f'"finalize":{_quoted(urls.path(f"{PREFIX}/order/{o.id}/finalize"))},'
            f'"profile":{_quoted(o.profile)}')
    if o.not_before:
        text += f',"notBefore":"{rfc3339(o.not_before)}"'
    if o.not_after:
        text += f',"notAfter":"{rfc3339(o.not_after)}"'
    if o.error:
        text += f',"error":{jsontext.compact(problems.from_stored(o.error))}'
    if o.certificate_id:
        text += f',"certificate":{_quoted(urls.certificate(o.certificate_id))}'
    if o.replaces:
        text += f',"replaces":{_quoted(o.replaces)}'
    return text + "}"
