"""The validation authority: proves control of identifiers (RFC 8555 §8, RFC 8737, RFC 8738).

Only :mod:`gateway.core` calls into this package. A :class:`Validator` is made
once per application (in a cleanup context) and is safe to call from many
concurrent tasks; its bounds on concurrency live inside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.errors import ErrorKind


@dataclass(frozen=True)
class ChallengeTask:
    """One challenge to validate.

    ``identifier_value`` is the order's identifier: for a wildcard order it is the
    base name (``example.com`` for ``*.example.com``) and ``wildcard`` is set.
    """

    identifier_type: str  # "dns" or "ip"
    identifier_value: str
    challenge_type: str  # "http-01", "dns-01", "tls-alpn-01"
    token: str
    key_authorization: str
    account_uri: str = ""
    wildcard: bool = False


@dataclass(frozen=True)
class ValidationFailure:
    """Why a validation failed, as an error kind and a detail a person can act on."""

    kind: ErrorKind
    detail: str


@dataclass(frozen=True)
class ValidationOutcome:
    """The result of validating one challenge (all attempts included)."""

    failure: ValidationFailure | None = None
    # validationRecord entries of RFC 8555 §8.3 (url, hostname, port, addressesResolved,
    # addressUsed), one or more per attempt.
    records: tuple[dict[str, Any], ...] = field(default=())

    @property
    def valid(self) -> bool:
        """True when control of the identifier was proven."""
        return self.failure is None


class Validator(Protocol):
    """What the core needs from the validation authority."""

    async def validate(self, task: ChallengeTask) -> ValidationOutcome:
        """Run the challenge (with retries and CAA) and report the outcome."""
        ...

    async def check_caa(
        self, identifier_value: str, wildcard: bool, account_uri: str, method: str
    ) -> ValidationFailure | None:
        """Check CAA for one DNS identifier; ``None`` means issuance is permitted."""
        ...

    async def aclose(self) -> None:
        """Release the client session and resolver."""
        ...
