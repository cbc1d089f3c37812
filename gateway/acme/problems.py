"""RFC 7807 problem documents for ACME, one mapping from ErrorKind to type and status."""

from __future__ import annotations

from typing import Any

from gateway.acme.jws import ALGORITHMS
from gateway.errors import ErrorKind, GatewayError

ACME_ERROR = "urn:ietf:params:acme:error:"
PROBLEM_JSON = "application/problem+json"

# HTTP status of each kind (RFC 8555 §6.7 and common practice of Boulder and Pebble).
STATUS: dict[ErrorKind, int] = {
    ErrorKind.ACCOUNT_DOES_NOT_EXIST: 400,
    ErrorKind.ALREADY_REVOKED: 400,
    ErrorKind.BAD_CSR: 400,
    ErrorKind.BAD_NONCE: 400,
    ErrorKind.BAD_PUBLIC_KEY: 400,
    ErrorKind.BAD_REVOCATION_REASON: 400,
    ErrorKind.BAD_SIGNATURE_ALGORITHM: 400,
    ErrorKind.CAA: 403,
    ErrorKind.COMPOUND: 403,
    ErrorKind.CONNECTION: 400,
    ErrorKind.DNS: 400,
    ErrorKind.EXTERNAL_ACCOUNT_REQUIRED: 401,
    ErrorKind.INCORRECT_RESPONSE: 403,
    ErrorKind.INVALID_CONTACT: 400,
    ErrorKind.INVALID_PROFILE: 400,
    ErrorKind.MALFORMED: 400,
    ErrorKind.ORDER_NOT_READY: 403,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.REJECTED_IDENTIFIER: 400,
    ErrorKind.SERVER_INTERNAL: 500,
    ErrorKind.TLS: 400,
    ErrorKind.UNAUTHORIZED: 403,
    ErrorKind.UNSUPPORTED_CONTACT: 400,
    ErrorKind.UNSUPPORTED_IDENTIFIER: 400,
    ErrorKind.USER_ACTION_REQUIRED: 403,
    ErrorKind.ALREADY_REPLACED: 409,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.METHOD_NOT_ALLOWED: 405,
    ErrorKind.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorKind.CA_UNAVAILABLE: 503,
    ErrorKind.CONFLICT: 409,
    ErrorKind.REQUEST_TIMEOUT: 408,
    ErrorKind.PAYLOAD_TOO_LARGE: 413,
}

# Kinds that are not ACME error types are sent as the closest one.
WIRE_TYPE: dict[ErrorKind, str] = {
    ErrorKind.NOT_FOUND: "malformed",
    ErrorKind.METHOD_NOT_ALLOWED: "malformed",
    ErrorKind.UNSUPPORTED_MEDIA_TYPE: "malformed",
    ErrorKind.CA_UNAVAILABLE: "serverInternal",
    ErrorKind.CONFLICT: "malformed",
    ErrorKind.REQUEST_TIMEOUT: "malformed",
    ErrorKind.PAYLOAD_TOO_LARGE: "malformed",
}


def problem_type(kind: ErrorKind) -> str:
    """The URN of a kind."""
    return ACME_ERROR + WIRE_TYPE.get(kind, kind.value)


def kind_of(value: str) -> ErrorKind:
    """The ErrorKind stored under ``value`` (serverInternal if unknown)."""
    try:
        return ErrorKind(value)
    except ValueError:
        return ErrorKind.SERVER_INTERNAL


def from_error(err: GatewayError) -> tuple[int, dict[str, Any]]:
    """HTTP status and problem document of a GatewayError."""
    doc: dict[str, Any] = {"type": problem_type(err.kind), "detail": err.detail,
                           "status": STATUS[err.kind]}
    if err.subproblems:
        doc["subproblems"] = [
            {"type": problem_type(s.kind), "detail": s.detail,
             "identifier": {"type": s.identifier_type, "value": s.identifier_value}}
            for s in err.subproblems]
    if err.kind is ErrorKind.BAD_SIGNATURE_ALGORITHM:
        doc["algorithms"] = list(ALGORITHMS)
    return STATUS[err.kind], doc


def from_stored(error: dict[str, Any]) -> dict[str, Any]:
    """A problem document from the stored form of an order or challenge error."""
    kind = kind_of(error.get("kind", ""))
    doc: dict[str, Any] = {"type": problem_type(kind), "detail": error.get("detail", ""),
                           "status": STATUS[kind]}
    subs = error.get("subproblems")
    if subs:
        doc["subproblems"] = [
            {"type": problem_type(kind_of(s.get("kind", ""))), "detail": s.get("detail", ""),
             "identifier": s.get("identifier")} for s in subs]
    return doc
