"""Typed reads of the members of an ACME request payload.

RFC 8555 §7 gives every member one JSON type, and the gateway reads it as that
type: ``"termsOfServiceAgreed": "yes"`` or ``1`` is not an agreement, and a
number where a date-time string belongs is not a date. A member of another
type is ``malformed`` with the member's name and both types; an absent member
and an explicit ``null`` both mean "not given".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from gateway.errors import ErrorKind, GatewayError

T = TypeVar("T")

_JSON_TYPES: dict[type, str] = {bool: "a boolean (true or false)", str: "a string",
                                list: "an array", dict: "an object", int: "an integer",
                                float: "a number"}


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value, for error details."""
    for kind, name in _JSON_TYPES.items():  # bool first: True is also an int
        if isinstance(value, kind):
            return name
    return "null"


def member(payload: Mapping[str, Any], name: str, kind: type[T]) -> T | None:
    """The member ``name`` when present and not null; malformed if it has another type."""
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise GatewayError(ErrorKind.MALFORMED,
                           f"{name} must be {_JSON_TYPES[kind]}, not {json_type(value)}")
    return value
