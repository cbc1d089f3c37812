"""EJBCA REST wire details: answer classification, usernames, pending references.

EJBCA 8's ``pkcs10enroll`` answers 400 for nearly every failure, so the class
of an error is read from ``error_message``:

==========================  ===========================================
message says                result
==========================  ===========================================
approval rejected/expired   :class:`Rejected` (an approver said no, or never)
waiting for approval        :class:`Pending`
offline / not active /      :class:`CAUnavailable` (retried later)
crypto token / unavailable
unknown CA or profile,      :class:`CAConfigError` (fix the profile's
not authorized              ``ca_params`` or the admin role)
anything else               :class:`Rejected` with EJBCA's message
==========================  ===========================================

Other codes: 200/201 issued, 202 waiting for approval, 401/403 our client
certificate lacks rights, 404 unknown CA/profile, 409/422 refusal, 5xx
unavailable.

Approvals, as EJBCA's REST reference documents them: an approval-gated
enrollment is answered 202 with ``{"status_code": 202, "info_message": ...,
"link": ".../<request_id>/finalize"}`` (some versions add ``request_id``).
Once approved, ``POST v1/certificate/<request_id>/finalize`` with
``{"response_format": "DER", "password": <the enrollment code>}`` answers 201
with the certificate; while waiting it answers 202 again; a rejected, expired
or failed approval is a 400 naming that. :class:`ApprovalRef` is the pending
reference that carries the request id (and never the enrollment code).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from connectors.base import (
    CAConfigError,
    CAProtocolError,
    CAUnavailable,
    Pending,
    Rejected,
    RevocationReason,
)

_APPROVAL_REFUSED = re.compile(
    r"approv\w*.*(reject|denied|declined|expired)|(reject|denied)\w*.*approv", re.I
)
_APPROVAL_WAIT = re.compile(r"wait\w*\s+for\s+approval|approval\s+(is\s+)?(required|pending)", re.I)
_OFFLINE = re.compile(
    r"off-?\s?line|not active|crypto\s?token|temporarily|unavailable|is not online", re.I
)
_CONFIG = re.compile(
    r"(profile|\bca\b|certificate authority).{0,80}(does ?n[o']t exist|not exist|not found|"
    r"unknown|could not find)|could not find (profile|ca)|not authori[sz]ed|unauthori[sz]ed",
    re.I,
)

REASONS = {
    RevocationReason.UNSPECIFIED: "UNSPECIFIED",
    RevocationReason.KEY_COMPROMISE: "KEY_COMPROMISE",
    RevocationReason.CA_COMPROMISE: "CA_COMPROMISE",
    RevocationReason.AFFILIATION_CHANGED: "AFFILIATION_CHANGED",
    RevocationReason.SUPERSEDED: "SUPERSEDED",
    RevocationReason.CESSATION_OF_OPERATION: "CESSATION_OF_OPERATION",
    RevocationReason.CERTIFICATE_HOLD: "CERTIFICATE_HOLD",
    RevocationReason.PRIVILEGES_WITHDRAWN: "PRIVILEGES_WITHDRAWN",
    RevocationReason.AA_COMPROMISE: "AA_COMPROMISE",
}
USERNAME_STRATEGIES = ("per_order", "fixed", "cn")
_FINALIZE_LINK = re.compile(r"/(\d+)/finalize\b")
_REQUEST_ID = re.compile(r"request with id\s*'?(\d+)'?|approval request id\s*'?(\d+)'?", re.I)
_FINALIZE_REFUSED = re.compile(r"has been rejected|has expired|could not be executed", re.I)


def error_message(status: int, body: bytes) -> str:
    """EJBCA's ``error_message`` (or ``info_message``), else a short excerpt of the body."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        for key in ("error_message", "info_message"):
            if isinstance(doc.get(key), str):
                return str(doc[key])
    text = body.decode("utf-8", "replace").strip()
    return f"HTTP {status}: {text[:200]}" if text else f"HTTP {status}"


def classify_refusal(status: int, message: str, ref: str, retry_after: float) -> Pending | Rejected:
    """Map a non-success enrollment answer to a result or raise the matching error."""
    if status == 202 or (status == 400 and _APPROVAL_WAIT.search(message)):
        if _APPROVAL_REFUSED.search(message):
            return Rejected(message)
        return Pending(ref=ref, retry_after=retry_after, message=f"EJBCA: {message}")
    if status >= 500 or _OFFLINE.search(message):
        raise CAUnavailable(f"EJBCA cannot issue now ({message}); will retry")
    if status in (401, 403):
        raise CAConfigError(
            f"EJBCA refused our client certificate ({message}); give it an administrator role "
            "with RA rights for this CA and profiles"
        )
    if status == 404 or (status == 400 and _CONFIG.search(message)):
        raise CAConfigError(
            f"EJBCA does not accept the configured CA or profile names ({message}); fix "
            "ca_name / certificate_profile / end_entity_profile in the profile's ca_params"
        )
    if _APPROVAL_REFUSED.search(message):
        return Rejected(message)
    if 400 <= status < 500:
        return Rejected(message)
    raise CAProtocolError(f"EJBCA answered an unexpected HTTP {status}: {message}")


def approval_request_id(doc: Any, message: str) -> int | None:
    """The approval request id of a 202 answer: ``request_id``, the finalize link, the text."""
    if isinstance(doc, dict):
        if isinstance(doc.get("request_id"), int) and not isinstance(doc["request_id"], bool):
            return int(doc["request_id"])
        link = _FINALIZE_LINK.search(str(doc.get("link") or ""))
        if link:
            return int(link.group(1))
    found = _REQUEST_ID.search(message)
    return int(found.group(1) or found.group(2)) if found else None


def classify_finalize(status: int, message: str) -> Rejected | None:
    """A finalize answer that ends the request (rejected, expired, failed), else None."""
    if status == 400 and _FINALIZE_REFUSED.search(message):
        return Rejected(f"EJBCA: {message}")
    return None


@dataclass(frozen=True)
class ApprovalRef:
    """A pending approval at EJBCA: what finalize needs, except the enrollment code itself."""

    request_id: int
    username: str
    key_id: str  # SHA-256 of the CSR's public key: finds the certificate if a finalize is lost
    enrollment_code_file: str = ""
    enrollment_code_env: str = ""

    def to_ref(self) -> str:
        """An opaque, compact reference."""
        return _pack("ejbca2", asdict(self))

    @classmethod
    def from_ref(cls, ref: str) -> ApprovalRef:
        """Parse a reference made by :meth:`to_ref`."""
        try:
            return cls(**_unpack("ejbca2", ref))
        except (ValueError, TypeError) as exc:
            raise CAConfigError(f"{ref[:40]!r} is not a pending EJBCA approval") from exc


def _pack(prefix: str, doc: dict[str, Any]) -> str:
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return f"{prefix}." + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unpack(prefix: str, ref: str) -> dict[str, Any]:
    """The document of a packed reference; ValueError when it is not one of ``prefix``."""
    found, _, payload = ref.partition(".")
    if found != prefix:
        raise ValueError(found)
    doc = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if not isinstance(doc, dict):
        raise ValueError("not an object")
    return doc


@dataclass(frozen=True)
class EnrollParams:
    """Everything needed to (re-)submit one enrollment; a pending ``ref`` carries it."""

    username: str
    certificate_profile: str
    end_entity_profile: str
    ca_name: str
    csr_b64: str
    enrollment_code_file: str = ""
    enrollment_code_env: str = ""

    def to_ref(self) -> str:
        """An opaque, compact reference (no secret inside: only where the code is kept)."""
        return _pack("ejbca1", asdict(self))

    @classmethod
    def from_ref(cls, ref: str) -> EnrollParams:
        """Parse a reference made by :meth:`to_ref`."""
        try:
            return cls(**_unpack("ejbca1", ref))
        except (ValueError, TypeError) as exc:
            raise CAConfigError(f"{ref[:40]!r} is not a pending EJBCA reference") from exc


def choose_username(
    strategy: str,
    request_id: str,
    csr: x509.CertificateSigningRequest,
    dns_names: tuple[str, ...],
    fixed: str,
    prefix: str,
) -> str:
    """The end-entity username for one request, by strategy.

    * ``per_order``: ``prefix + request_id`` – one end entity per order, stable
      across retries and polls of that order (EJBCA updates it on each call).
    * ``cn``: the CSR's common name, else the first DNS name – one end entity
      per host, as EJBCA operators often keep them.
    * ``fixed``: one configured username for everything.
    """
    if strategy == "fixed":
        if not fixed:
            raise CAConfigError("username_strategy = fixed needs ca_params.username (or username)")
        return fixed
    if strategy == "cn":
        cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        name = str(cns[0].value) if cns else (dns_names[0] if dns_names else "")
        if not name:
            raise CAConfigError(
                "username_strategy = cn, but the CSR has neither a CN nor a DNS name"
            )
        return name
    return f"{prefix}{request_id}"
