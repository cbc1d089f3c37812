"""The validation authority: proves control of identifiers (RFC 8555 §8, RFC 8737, RFC 8738).

Only :mod:`gateway.core` calls into this package. A :class:`Validator` is made
once per application (in a cleanup context) and is safe to call from many
concurrent tasks; its bounds on concurrency live inside it.

Modules: ``engine`` (the :class:`~gateway.validation.engine.ValidationAuthority`:
bounds, retries, records), ``http01``, ``dns01``, ``tlsalpn01``, ``caa``,
``netguard`` (blocked networks), ``targets`` (name → checked addresses),
``dnsclient``/``dnswire``/``dnsmessage`` (DNS lookups, the stub, the wire
format), ``httpfetch`` (bounded HTTP/1.1 GET), ``pacer`` (starts per loop turn).

Error kinds a failure carries, and whether another attempt is made:

===================  =======================================================  =====
kind                 when                                                     retry
===================  =======================================================  =====
dns                  SERVFAIL/REFUSED/timeout/malformed answer               yes
dns                  NXDOMAIN or no A/AAAA for the name; name resolves only   no
                     to blocked addresses; CNAME chain too long
connection           refused, reset, timed out, closed mid-response           yes
connection           not HTTP, bad redirect (scheme, port, loop, too many,    no
                     blocked target)
tls                  TLS handshake failed (tls-alpn-01, https redirect)       yes
tls                  acme-tls/1 not negotiated                                no
unauthorized         HTTP status other than 200; no TXT record at all         no
incorrectResponse    wrong key authorization / TXT digest / validation        no
                     certificate; body over ``max_body_bytes``
caa                  CAA forbids issuance (checked after a valid challenge)   no
rejectedIdentifier   an IP identifier in a blocked network                    no
malformed            wildcard without dns-01; dns-01 for an IP; bad name      no
unsupportedIdentifier  identifier type other than dns or ip                   no
===================  =======================================================  =====
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from gateway.errors import ErrorKind


class ChallengeTask(NamedTuple):
    """One challenge to validate.

    ``identifier_value`` is the order's identifier: for a wildcard order it is the
    base name (``example.com`` for ``*.example.com``) and ``wildcard`` is set.
    (These three records are named tuples: immutable, and built for a third of
    what a frozen dataclass costs, once per validation.)
    """

    identifier_type: str  # "dns" or "ip"
    identifier_value: str
    challenge_type: str  # "http-01", "dns-01", "tls-alpn-01"
    token: str
    key_authorization: str
    account_uri: str = ""
    wildcard: bool = False


class ValidationFailure(NamedTuple):
    """Why a validation failed, as an error kind and a detail a person can act on."""

    kind: ErrorKind
    detail: str


class ValidationOutcome(NamedTuple):
    """The result of validating one challenge (all attempts included)."""

    failure: ValidationFailure | None = None
    # validationRecord entries of RFC 8555 §8.3 (url, hostname, port, addressesResolved,
    # addressUsed), one or more per attempt.
    records: tuple[dict[str, Any], ...] = ()

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
