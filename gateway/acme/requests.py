"""ACME request payloads parsed into the core's typed requests (RFC 8555 §7.3, §7.4).

The core never reads JSON of the ACME wire: newAccount, account updates and
newOrder payloads become :class:`NewAccount`, :class:`AccountUpdate` and
:class:`NewOrder` here, every member checked for its type (a wrong one is
``malformed``) before any policy looks at it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.acme.fields import member
from gateway.core.accounts import AccountUpdate, NewAccount
from gateway.core.orders import NewOrder
from gateway.errors import ErrorKind, GatewayError
from gateway.model.records import Identifier

MAX_CONTACTS = 10


def new_account(payload: dict[str, Any]) -> NewAccount:
    """The newAccount payload: contact, termsOfServiceAgreed, onlyReturnExisting."""
    return NewAccount(contact=_contact(payload) or (),
                      terms_agreed=member(payload, "termsOfServiceAgreed", bool) is True,
                      only_return_existing=member(payload, "onlyReturnExisting", bool) is True)


def account_update(payload: dict[str, Any]) -> AccountUpdate:
    """An account POST: a new contact list and/or ``status: deactivated``."""
    return AccountUpdate(contact=_contact(payload), status=member(payload, "status", str))


def authz_status(payload: dict[str, Any]) -> str | None:
    """An authorization POST's ``status`` (deactivation asks for "deactivated")."""
    return member(payload, "status", str)


def _contact(payload: dict[str, Any]) -> tuple[str, ...] | None:
    """The ``contact`` member: a list of URL strings; None when absent."""
    value = payload.get("contact")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise GatewayError(ErrorKind.MALFORMED, "contact must be a list of URL strings")
    if len(value) > MAX_CONTACTS:
        raise GatewayError(ErrorKind.MALFORMED, f"at most {MAX_CONTACTS} contacts are allowed")
    return tuple(value)


def new_order(payload: dict[str, Any]) -> NewOrder:
    """The newOrder payload: identifiers, and optionally profile, validity and ``replaces``."""
    return NewOrder(profile=member(payload, "profile", str),
                    not_before=parse_time(payload, "notBefore"),
                    not_after=parse_time(payload, "notAfter"),
                    identifiers=tuple(parse_identifiers(payload.get("identifiers"))),
                    replaces=member(payload, "replaces", str))


def parse_time(payload: dict[str, Any], name: str) -> datetime | None:
    """An optional RFC 3339 timestamp (a JSON string) from a newOrder payload."""
    value = member(payload, name, str)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise GatewayError(ErrorKind.MALFORMED, f"{name} is not an RFC 3339 date-time") from None
    if parsed.tzinfo is None:
        raise GatewayError(ErrorKind.MALFORMED, f"{name} must carry a time zone")
    return parsed


def parse_identifiers(value: Any) -> list[Identifier]:
    """The ``identifiers`` array of a newOrder payload."""
    if not isinstance(value, list) or not value:
        raise GatewayError(ErrorKind.MALFORMED, "identifiers must be a non-empty array")
    out = []
    for item in value:
        if not (isinstance(item, dict) and isinstance(item.get("type"), str)
                and isinstance(item.get("value"), str)):
            raise GatewayError(ErrorKind.MALFORMED,
                               "each identifier must be an object with string type and value")
        out.append(Identifier(item["type"], item["value"]))
    return out
