"""The connector contract: how the issuance core hands a CSR to a CA.

Exception tree (every connector raises only these; vendor exceptions are
translated at the connector's edge)::

    ConnectorError                 any CA failure
    ├── CAUnavailable              transient: timeout, refused, 5xx, offline token; retry later
    │   └── SubmissionInDoubt      a submission got no answer: the CA may or may not hold it
    ├── CAProtocolError            the CA answered something we cannot understand; retry later
    ├── CAConfigError              the connector's own settings are wrong; not retried
    └── RevocationUnsupported      the CA offers no way to revoke through this connector

A refusal by the CA (denied request, policy violation) is not an exception but
a :class:`Rejected` result, because it ends the request cleanly with the CA's
reason.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


class RevocationReason(enum.IntEnum):
    """CRLReason codes of RFC 5280 §5.3.1 (7 is unused)."""

    UNSPECIFIED = 0
    KEY_COMPROMISE = 1
    CA_COMPROMISE = 2
    AFFILIATION_CHANGED = 3
    SUPERSEDED = 4
    CESSATION_OF_OPERATION = 5
    CERTIFICATE_HOLD = 6
    REMOVE_FROM_CRL = 8
    PRIVILEGES_WITHDRAWN = 9
    AA_COMPROMISE = 10


SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"


@dataclass(frozen=True)
class CAProfile:
    """What the policy profile asks of the CA for one request.

    ``params`` carries connector-specific names (an AD CS template, EJBCA
    certificate/end-entity profile names, ...) taken verbatim from the profile's
    ``[profiles.NAME.ca_params]`` table.
    """

    name: str
    validity: timedelta = timedelta(days=90)
    ekus: tuple[str, ...] = (SERVER_AUTH, CLIENT_AUTH)
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IssueRequest:
    """A finalized, policy-checked CSR on its way to a CA.

    ``request_id`` is stable across retries of the same request, so a CA that
    supports idempotency keys (or a username per order) can use it to avoid
    issuing twice. ``subject_cn`` is set when the profile asks the CA to put a
    common name into the subject that the CSR lacks.

    ``csr`` and ``csr_key`` are ``csr_der`` and its key as the core already
    parsed them (None when the request was rebuilt from storage): a connector
    that reads the CSR uses them rather than parse it again (:meth:`parsed_csr`).
    ``first_submission`` is True only when the core created this request's job
    in the same call: no CA can hold an earlier submission of ``request_id``,
    so a connector may skip looking for one.
    """

    request_id: str
    csr_der: bytes
    profile: CAProfile
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    subject_cn: str | None = None
    csr: x509.CertificateSigningRequest | None = field(default=None, compare=False, repr=False)
    csr_key: CertificatePublicKeyTypes | None = field(default=None, compare=False, repr=False)
    first_submission: bool = False
    # ``csr_key``'s DER SubjectPublicKeyInfo as the library encodes it, when the core has it.
    csr_spki: bytes | None = field(default=None, compare=False, repr=False)

    def parsed_csr(self) -> tuple[x509.CertificateSigningRequest, CertificatePublicKeyTypes]:
        """The CSR and its public key, parsed here only if the core did not hand them over.

        Raises ValueError (and what ``public_key()`` raises) for a CSR that cannot be read.
        """
        csr = self.csr if self.csr is not None else x509.load_der_x509_csr(self.csr_der)
        key = self.csr_key if self.csr_key is not None and self.csr is not None \
            else csr.public_key()
        return csr, key


@dataclass(frozen=True)
class Issued:
    """The CA issued: the leaf and the chain above it (issuer first, root last or absent)."""

    leaf_der: bytes
    chain_der: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Pending:
    """The CA accepted the request but has not decided; poll ``ref`` later."""

    ref: str
    retry_after: float | None = None
    message: str = ""


@dataclass(frozen=True)
class Rejected:
    """The CA refused the request; ``reason`` is the CA's own words."""

    reason: str


IssueResult = Issued | Pending | Rejected


class ConnectorError(Exception):
    """Base of every connector failure."""

    retryable: bool = False


class CAUnavailable(ConnectorError):
    """The CA cannot be reached or is temporarily unable to serve."""

    retryable = True


class SubmissionInDoubt(CAUnavailable):
    """A submission was sent but no answer came back: the CA may have taken it.

    ``hint`` is the connector's own note for :meth:`SubmissionLookup.lookup`
    (e.g. the highest request id seen before sending). The core never sends the
    request again before the connector has looked for it.
    """

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class CAProtocolError(ConnectorError):
    """The CA answered in a form the connector cannot interpret."""

    retryable = True


class CAConfigError(ConnectorError):
    """The connector is configured wrongly; an operator must fix the settings."""


class RevocationUnsupported(ConnectorError):
    """The CA cannot revoke through this connector."""


class AlreadyRevoked(ConnectorError):
    """The CA reports that the certificate is already revoked."""


@contextlib.contextmanager
def starting(name: str) -> Iterator[None]:
    """Around a connector's ``start()``: any failure leaves as one line naming CA and cause.

    A connector error keeps its class (and words); anything else (a missing
    file, a library error) becomes a :class:`CAConfigError`. Either way the
    message is a single line that starts with ``[cas.NAME]``, as an operator
    reads it when the gateway refuses to start.
    """
    try:
        yield
    except ConnectorError as exc:
        text = " ".join(str(exc).split())
        if text.startswith(f"[cas.{name}]"):
            raise
        exc.args = (f"[cas.{name}] cannot start: {text}",)
        raise
    except Exception as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise CAConfigError(f"[cas.{name}] cannot start: {type(exc).__name__}: {text}") from exc


def public_key_id(der: bytes, csr: bool = False) -> str:
    """SHA-256 (hex) of the SubjectPublicKeyInfo of a DER certificate, or CSR with ``csr``.

    How a connector recognises, among a CA's certificates, the one that answers
    a CSR whose submission lost its answer.
    """
    obj = x509.load_der_x509_csr(der) if csr else x509.load_der_x509_certificate(der)
    spki = obj.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


@runtime_checkable
class SubmissionLookup(Protocol):
    """A connector that can find an earlier submission whose answer was lost."""

    async def lookup(self, request: IssueRequest, hint: str) -> IssueResult | None:
        """What the CA did with an earlier submission of ``request``; None if it has none."""
        ...


@runtime_checkable
class OffersAlternateChains(Protocol):
    """A CA that can present its leaves under more than one chain (RFC 8555 §7.4.2).

    E.g. one chain ending at a new root and one cross-signed to an older root
    that old clients still trust. Each chain is issuer first, as in
    :class:`Issued`; the gateway offers those whose first certificate issued the leaf.
    """

    async def alternate_chains(self) -> tuple[tuple[bytes, ...], ...]:
        """The chains offered besides the one :meth:`Connector.issue` returns, as DER."""
        ...


@runtime_checkable
class Connector(Protocol):
    """What every CA connector offers the issuance core."""

    name: str

    async def issue(self, request: IssueRequest) -> IssueResult:
        """Submit a CSR; the CA issues, defers or refuses."""
        ...

    async def poll(self, ref: str) -> IssueResult:
        """Ask again about a request the CA left pending."""
        ...

    async def revoke(self, cert_der: bytes, reason: RevocationReason) -> None:
        """Revoke a certificate this CA issued."""
        ...

    async def ca_certs(self) -> tuple[bytes, ...]:
        """The issuing CA certificate first, then any intermediates and the root, as DER."""
        ...

    async def check(self) -> None:
        """Raise a :class:`ConnectorError` when the CA is not usable right now."""
        ...

    async def aclose(self) -> None:
        """Release sessions, tokens and threads."""
        ...
