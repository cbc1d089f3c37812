"""Revocation data for relying parties: CRLs and OCSP answers of the CAs that publish them.

The ``/pkix/<ca>/...`` routes reach connectors only through this service (the
front ends never import connectors). A connector publishes revocation data when
it has ``crl_der()`` and ``ocsp_response()`` (the local CA does; AD CS and
EJBCA publish their own).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from cryptography.x509 import ocsp

from connectors.base import ConnectorError
from gateway.errors import ErrorKind, GatewayError

log = logging.getLogger(__name__)

# How long a client should wait before asking again when the CA key is unusable.
RETRY_AFTER_SECONDS = 30


@runtime_checkable
class RevocationPublisher(Protocol):
    """A connector that signs its own CRLs and OCSP responses."""

    async def crl_der(self) -> bytes:
        """The current CRL, DER."""
        ...

    async def ocsp_response(self, request_der: bytes) -> bytes:
        """The DER OCSP response to a DER request (malformed input gets malformedRequest)."""
        ...


@dataclass(frozen=True)
class OcspAnswer:
    """A DER OCSP response and, when it is a signed answer, the window it is valid for."""

    der: bytes
    this_update: datetime | None = None
    next_update: datetime | None = None

    @property
    def etag(self) -> str:
        """A strong validator for HTTP caches (RFC 5019 §6.2 suggests the response's hash)."""
        return '"' + hashlib.sha1(self.der, usedforsecurity=False).hexdigest() + '"'


def ocsp_answer(der: bytes) -> OcspAnswer:
    """The answer with its validity window read from it (none for error responses)."""
    try:
        parsed = ocsp.load_der_ocsp_response(der)
        if parsed.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return OcspAnswer(der)
        return OcspAnswer(der, parsed.this_update_utc, parsed.next_update_utc)
    except ValueError:
        return OcspAnswer(der)


class PkixService:
    """CRL and OCSP of every connector that publishes them, by CA name."""

    def __init__(self, connectors: Mapping[str, object]) -> None:
        # Kept as given, not filtered now: the app may fill the mapping after building us.
        self._connectors = connectors

    def names(self) -> tuple[str, ...]:
        """The CAs whose revocation data this service serves."""
        served = (n for n, c in self._connectors.items() if isinstance(c, RevocationPublisher))
        return tuple(sorted(served))

    def _publisher(self, ca: str) -> RevocationPublisher:
        publisher = self._connectors.get(ca)
        if not isinstance(publisher, RevocationPublisher):
            served = ", ".join(self.names()) or "none"
            raise GatewayError(
                ErrorKind.NOT_FOUND,
                f"no CA {ca!r} publishes revocation data here (served: {served})",
            )
        return publisher

    async def crl(self, ca: str) -> bytes:
        """The current CRL of ``ca``."""
        publisher = self._publisher(ca)
        return await _unavailable_as_error(publisher.crl_der(), f"the CRL of {ca!r}")

    async def root_crl(self, ca: str) -> bytes:
        """The CRL of ``ca``'s offline root (two-tier local CAs only)."""
        publisher = self._publisher(ca)
        read = getattr(publisher, "root_crl_der", None)
        der = await _unavailable_as_error(read(), f"the root CRL of {ca!r}") if read else None
        if der is None:
            raise GatewayError(ErrorKind.NOT_FOUND, f"CA {ca!r} has no root above it here")
        return bytes(der)

    async def ocsp(self, ca: str, request_der: bytes) -> OcspAnswer:
        """The OCSP response of ``ca`` to ``request_der`` (errors are OCSP responses too)."""
        publisher = self._publisher(ca)
        answer = publisher.ocsp_response(request_der)
        return ocsp_answer(await _unavailable_as_error(answer, f"the OCSP responder of {ca!r}"))


async def _unavailable_as_error(pending: Awaitable[bytes], what: str) -> bytes:
    """Await ``pending``; a connector failure becomes a retryable CA_UNAVAILABLE refusal."""
    try:
        return await pending
    except ConnectorError as exc:
        log.warning("%s is unavailable: %s", what, exc)
        raise GatewayError(
            ErrorKind.CA_UNAVAILABLE, f"{what} is unavailable now", retry_after=RETRY_AFTER_SECONDS
        ) from exc
