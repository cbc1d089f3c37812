"""Typed errors of the gateway, free of any HTTP or wire type.

Every failure that a client may see is a :class:`GatewayError` carrying an
:class:`ErrorKind`. Front ends translate kinds into their own wire form (an RFC
8555 problem document for ACME, a status line and a text body for EST); the core
and the validation authority never know about HTTP.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class ErrorKind(enum.Enum):
    """What went wrong, in the vocabulary of RFC 8555 §6.7 plus a few of our own."""

    ACCOUNT_DOES_NOT_EXIST = "accountDoesNotExist"
    ALREADY_REVOKED = "alreadyRevoked"
    BAD_CSR = "badCSR"
    BAD_NONCE = "badNonce"
    BAD_PUBLIC_KEY = "badPublicKey"
    BAD_REVOCATION_REASON = "badRevocationReason"
    BAD_SIGNATURE_ALGORITHM = "badSignatureAlgorithm"
    CAA = "caa"
    COMPOUND = "compound"
    CONNECTION = "connection"
    DNS = "dns"
    EXTERNAL_ACCOUNT_REQUIRED = "externalAccountRequired"
    INCORRECT_RESPONSE = "incorrectResponse"
    INVALID_CONTACT = "invalidContact"
    INVALID_PROFILE = "invalidProfile"
    MALFORMED = "malformed"
    ORDER_NOT_READY = "orderNotReady"
    RATE_LIMITED = "rateLimited"
    REJECTED_IDENTIFIER = "rejectedIdentifier"
    SERVER_INTERNAL = "serverInternal"
    TLS = "tls"
    UNAUTHORIZED = "unauthorized"
    UNSUPPORTED_CONTACT = "unsupportedContact"
    UNSUPPORTED_IDENTIFIER = "unsupportedIdentifier"
    USER_ACTION_REQUIRED = "userActionRequired"
    ALREADY_REPLACED = "alreadyReplaced"  # RFC 9773 §7.4
    # Not ACME error types: resource lookups and transport-level refusals.
    NOT_FOUND = "notFound"
    METHOD_NOT_ALLOWED = "methodNotAllowed"
    UNSUPPORTED_MEDIA_TYPE = "unsupportedMediaType"
    CA_UNAVAILABLE = "caUnavailable"
    # The key is in use by another account; the detail carries that account's id.
    CONFLICT = "conflict"
    # The client sent its request too slowly, or a body over the route's limit.
    REQUEST_TIMEOUT = "requestTimeout"
    PAYLOAD_TOO_LARGE = "payloadTooLarge"


@dataclass(frozen=True)
class Subproblem:
    """One identifier's share of a compound error (RFC 8555 §6.7.1)."""

    kind: ErrorKind
    detail: str
    identifier_type: str
    identifier_value: str


@dataclass
class GatewayError(Exception):
    """A refusal the client should see, with a reason that names the rule."""

    kind: ErrorKind
    detail: str
    subproblems: tuple[Subproblem, ...] = field(default=())
    retry_after: int | None = None
    # Another resource the client should look at (e.g. the account already holding a key).
    location: str | None = None

    def __post_init__(self) -> None:
        super().__init__(f"{self.kind.value}: {self.detail}")

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.detail}"


class StartError(Exception):
    """The gateway cannot start serving; the message is one line naming the cause (file, key,
    port) and the fix."""

    # The exit status of a process that could not start (2 is a configuration error).
    EXIT_STATUS = 3


class ConfigError(Exception):
    """A configuration problem found at start-up; the message names file, key and fix."""

    def __init__(self, source: str, key: str, expected: str) -> None:
        self.source = source
        self.key = key
        self.expected = expected
        super().__init__(f"{source}: [{key}] {expected}")
