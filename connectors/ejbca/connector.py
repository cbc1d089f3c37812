"""EJBCA through its REST API, authenticated by an administrator's TLS client certificate.

Configuration (``[cas.NAME]``, ``type = "ejbca"``)::

    url = "https://ejbca.example.net:8443/ejbca/ejbca-rest-api"   # required, https
    client_cert_file = "ra-admin.pem"  client_key_file = "ra-admin.key"
    client_key_passphrase_file = ...   # or _env; never inline
    # or: pkcs12_file = "ra-admin.p12"  pkcs12_passphrase_file = ... (or _env)
    ca_bundle_file = "ejbca-mgmt-ca.pem"   # trust for EJBCA's TLS certificate
    ca_name = "IssuingCA"                  # defaults for profiles that name none
    certificate_profile = "SERVER"
    end_entity_profile = "ACME"
    username_strategy = "per_order"        # per_order | cn | fixed
    username = ""                          # for fixed
    username_prefix = "acme-"              # for per_order
    enrollment_code_file = ...             # or enrollment_code_env; else a random code per call
    timeout_seconds, connect_timeout_seconds, retries, retry_backoff_seconds,
    poll_interval_seconds = 30

Profile parameters (``[profiles.P.ca_params]``) override the defaults:
``ca_name``, ``certificate_profile``, ``end_entity_profile``,
``username_strategy``, ``username``, ``enrollment_code_file``,
``enrollment_code_env``.

Approvals follow EJBCA's REST reference: an approval-gated ``pkcs10enroll`` is
answered 202 with the approval request id (in ``request_id`` or the finalize
``link``). The connector returns :class:`Pending` with an :class:`ApprovalRef`
and, on every poll, calls ``POST v1/certificate/{request_id}/finalize`` —
never ``pkcs10enroll`` again, which would open a new approval request each
time. Finalize answers 202 while the approval waits, 201 with the certificate
once approved, 400 when rejected or expired. An EJBCA that refuses an
approval-gated enrollment without a request id (EJBCA 8's 400 "waiting for
approval") cannot be finalized: that is a refusal naming the alternatives.

Finalize needs the enrollment code of the first call. A configured code is
read again from its file or variable; without one, the code is derived from
the username with a key kept in ``<data_dir>/ejbca-<name>-codes.key`` (made
on first start, mode 0600), so no code is ever stored in a pending reference.

Idempotence: with ``per_order`` the username is the same for every retry of
an order. A submission whose answer was lost raises
:class:`SubmissionInDoubt`; before enrolling again, :meth:`lookup` searches
the certificates of that username (``POST v1/certificate/search``) for one
with the CSR's key. A lost finalize answer ("already been finalized") is
recovered the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from yarl import URL

from connectors.base import (
    AlreadyRevoked,
    CAConfigError,
    CAProtocolError,
    CAUnavailable,
    ConnectorError,
    Issued,
    IssueRequest,
    IssueResult,
    Pending,
    Rejected,
    RevocationReason,
    RevocationUnsupported,
    SubmissionInDoubt,
    public_key_id,
    starting,
)
from connectors.ejbca.wire import (
    REASONS,
    USERNAME_STRATEGIES,
    ApprovalRef,
    EnrollParams,
    approval_request_id,
    choose_username,
    classify_finalize,
    classify_refusal,
    error_message,
)
from connectors.http_common import HttpPolicy, TlsSettings, order_chain, translate, with_retries
from connectors.secrets import OptionReader, read_secret


@dataclass(frozen=True)
class EjbcaSettings:
    """Settings of one EJBCA connector; ``repr`` never shows the enrollment code."""

    url: str
    tls: TlsSettings
    http: HttpPolicy = field(default_factory=HttpPolicy)
    ca_name: str = ""
    certificate_profile: str = ""
    end_entity_profile: str = ""
    username_strategy: str = "per_order"
    username: str = ""
    username_prefix: str = "acme-"
    enrollment_code: str | None = field(default=None, repr=False)
    poll_interval_seconds: float = 30.0
    code_key_file: Path | None = None  # derives enrollment codes when none is configured

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any], data_dir: Path, name: str = "ejbca"
    ) -> EjbcaSettings:
        """Parse the ``[cas.NAME]`` table; raise CAConfigError naming the key."""
        r = OptionReader(name, options, data_dir)
        url = r.required_str("url", "e.g. https://ejbca:8443/ejbca/ejbca-rest-api")
        if not url.startswith("https://"):
            raise r.error("url", "must start with https:// (EJBCA REST needs TLS client auth)")
        settings = cls(
            url=url.rstrip("/"),
            tls=TlsSettings.from_reader(r),
            http=HttpPolicy.from_reader(r),
            ca_name=r.string("ca_name"),
            certificate_profile=r.string("certificate_profile"),
            end_entity_profile=r.string("end_entity_profile"),
            username_strategy=r.choice("username_strategy", "per_order", USERNAME_STRATEGIES),
            username=r.string("username"),
            username_prefix=r.string("username_prefix", "acme-"),
            enrollment_code=r.secret("enrollment_code"),
            poll_interval_seconds=r.number("poll_interval_seconds", 30.0, 1.0),
            code_key_file=data_dir / f"ejbca-{name}-codes.key",
        )
        r.check_unknown()
        if not settings.tls.has_client_cert:
            raise r.error(
                "client_cert_file",
                "EJBCA REST needs an administrator's client certificate: "
                "set client_cert_file and client_key_file, or pkcs12_file",
            )
        return settings


class EjbcaConnector:
    """Issues, revokes and reads CA certificates through EJBCA REST."""

    def __init__(
        self, name: str, settings: EjbcaSettings, session: aiohttp.ClientSession | None = None
    ) -> None:
        self.name = name
        self.settings = settings
        self._session: aiohttp.ClientSession | None = (
            None  # own session: it carries our client cert
        )
        self._code_key = b""

    async def start(self) -> None:
        """Load the client certificate and code key, open the session; errors in one line."""
        with starting(self.name):
            self._start()

    def _start(self) -> None:
        ctx = self.settings.tls.ssl_context(f"[cas.{self.name}]")
        self._code_key = _code_key(self.settings.code_key_file)
        connector = aiohttp.TCPConnector(ssl=ctx, limit=32)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self.settings.http.client_timeout(),
            headers={"Accept": "application/json"},
        )

    async def aclose(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _url(self, *segments: str, query: str = "") -> URL:
        # Issuer and subject DNs contain '=' and ',': quote every segment ourselves.
        path = "/".join(quote(s, safe="") for s in segments)
        return URL(f"{self.settings.url}/{path}{'?' + query if query else ''}", encoded=True)

    async def _call(self, what: str, method: str, url: URL, body: Any = None) -> tuple[int, bytes]:
        if self._session is None:
            raise CAConfigError(f"connector {self.name!r} used before start()")
        try:
            async with self._session.request(method, url, json=body) as resp:
                return resp.status, await resp.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise translate(exc, f"EJBCA {what}") from exc

    async def _get(self, what: str, *segments: str) -> bytes:
        """An idempotent GET with retries; non-200 answers become errors."""

        async def once() -> bytes:
            status, body = await self._call(what, "GET", self._url(*segments))
            if status >= 500:
                raise CAUnavailable(f"EJBCA {what}: {error_message(status, body)}")
            if status in (401, 403):
                raise CAConfigError(
                    f"EJBCA {what}: our client certificate is not authorized "
                    f"({error_message(status, body)}); check its admin role"
                )
            if status != 200:
                raise CAProtocolError(f"EJBCA {what}: {error_message(status, body)}")
            return body

        return await with_retries(self.settings.http, f"EJBCA {what}", once)

    # -- enrollment -------------------------------------------------------
    def _params(self, request: IssueRequest) -> EnrollParams:
        p, s = request.profile.params, self.settings
        csr = x509.load_der_x509_csr(request.csr_der)
        strategy = p.get("username_strategy", s.username_strategy)
        if strategy not in USERNAME_STRATEGIES:
            raise CAConfigError(
                f"profile {request.profile.name!r}: username_strategy {strategy!r} "
                f"is not one of {', '.join(USERNAME_STRATEGIES)}"
            )
        username = choose_username(
            strategy,
            request.request_id,
            csr,
            request.dns_names,
            p.get("username", s.username),
            s.username_prefix,
        )
        params = EnrollParams(
            username=username,
            certificate_profile=p.get("certificate_profile", s.certificate_profile),
            end_entity_profile=p.get("end_entity_profile", s.end_entity_profile),
            ca_name=p.get("ca_name", s.ca_name),
            csr_b64=base64.b64encode(request.csr_der).decode(),
            enrollment_code_file=p.get("enrollment_code_file", ""),
            enrollment_code_env=p.get("enrollment_code_env", ""),
        )
        for key in ("certificate_profile", "end_entity_profile", "ca_name"):
            if not getattr(params, key):
                raise CAConfigError(
                    f"profile {request.profile.name!r} names no EJBCA {key}: set "
                    f"ca_params.{key}, or {key} in [cas.{self.name}]"
                )
        return params

    def _enrollment_code(self, params: EnrollParams) -> str:
        code = read_secret(
            "EJBCA profile",
            "enrollment_code",
            params.enrollment_code_file or None,
            params.enrollment_code_env or None,
        )
        return code or self.settings.enrollment_code or self._derived_code(params.username)

    def _derived_code(self, username: str) -> str:
        """Without a configured code: one per end entity, the same on every call for it."""
        key = self._code_key or secrets.token_bytes(32)  # no key file: a one-off code
        digest = hmac.new(key, username.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()

    async def issue(self, request: IssueRequest) -> IssueResult:
        """Submit the CSR with pkcs10enroll."""
        return await self._enroll(self._params(request), public_key_id(request.csr_der, csr=True))

    async def poll(self, ref: str) -> IssueResult:
        """Finalize an approved enrollment (or re-submit a reference of the older form)."""
        if ref.startswith("ejbca2."):
            return await self._finalize(ApprovalRef.from_ref(ref), ref)
        params = EnrollParams.from_ref(ref)
        return await self._enroll(params, public_key_id(base64.b64decode(params.csr_b64), csr=True))

    async def lookup(self, request: IssueRequest, hint: str) -> IssueResult | None:
        """A certificate EJBCA issued for an earlier submission of ``request``, if any."""
        params = self._params(request)
        return await self._find_issued(params.username, public_key_id(request.csr_der, csr=True))

    async def _enroll(self, params: EnrollParams, key_id: str) -> IssueResult:
        csr_pem = x509.load_der_x509_csr(base64.b64decode(params.csr_b64)).public_bytes(
            Encoding.PEM
        )
        body = {
            "certificate_request": csr_pem.decode(),
            "certificate_profile_name": params.certificate_profile,
            "end_entity_profile_name": params.end_entity_profile,
            "certificate_authority_name": params.ca_name,
            "username": params.username,
            "password": self._enrollment_code(params),
            "include_chain": True,
            "response_format": "DER",
        }
        url = self._url("v1", "certificate", "pkcs10enroll")
        try:
            status, answer = await self._call("enrollment", "POST", url, body)
        except CAUnavailable as exc:
            if isinstance(exc.__cause__, aiohttp.ClientConnectorError):
                raise  # never reached EJBCA
            raise SubmissionInDoubt(f"{exc}; looking for it before enrolling again") from exc
        if status in (200, 201):
            return await self._issued(answer)
        message = error_message(status, answer)
        result = classify_refusal(status, message, "", self.settings.poll_interval_seconds)
        if isinstance(result, Pending):
            return self._approval(params, key_id, answer, message)
        return result

    def _approval(self, params: EnrollParams, key_id: str, answer: bytes,
                  message: str) -> IssueResult:
        """The enrollment waits for approval: pending on the request id EJBCA gave."""
        request_id = approval_request_id(_maybe_json(answer), message)
        if request_id is None:
            return Rejected(
                f"EJBCA holds the enrollment for approval but gives no approval request id to "
                f"finalize it with ({message}); use an EJBCA whose REST API answers 202 with a "
                "finalize link, or approval_required in the gateway's profile instead")
        ref = ApprovalRef(request_id, params.username, key_id, params.enrollment_code_file,
                          params.enrollment_code_env)
        return Pending(ref.to_ref(), retry_after=self.settings.poll_interval_seconds,
                       message=f"EJBCA approval request {request_id}: {message}")

    async def _finalize(self, ref: ApprovalRef, raw_ref: str) -> IssueResult:
        """POST .../{request_id}/finalize: the certificate once approved, 202 while waiting."""
        code = self._enrollment_code(EnrollParams(
            ref.username, "", "", "", "", ref.enrollment_code_file, ref.enrollment_code_env))
        what = f"finalize of approval request {ref.request_id}"
        url = self._url("v1", "certificate", str(ref.request_id), "finalize")
        status, answer = await self._call(what, "POST", url,
                                          {"response_format": "DER", "password": code})
        if status in (200, 201):
            return await self._issued(answer)
        message = error_message(status, answer)
        if status == 202:
            return Pending(raw_ref, retry_after=self.settings.poll_interval_seconds,
                           message=f"EJBCA approval request {ref.request_id}: {message}")
        if "already been finalized" in message.lower():  # our earlier answer was lost
            found = await self._find_issued(ref.username, ref.key_id)
            if found is not None:
                return found
        refused = classify_finalize(status, message)
        if refused is not None:
            return refused
        return _finalize_failure(status, what, message)

    async def _find_issued(self, username: str, key_id: str) -> IssueResult | None:
        """Search the certificates of ``username`` for the one with our key."""
        body = {"max_number_of_results": 50,
                "criteria": [{"property": "QUERY", "value": username, "operation": "EQUAL"}]}
        url = self._url("v1", "certificate", "search")
        status, answer = await self._call("certificate search", "POST", url, body)
        if status in (403, 404):
            return None  # search not offered to us: enrolling again updates the same entity
        if status != 200:
            raise CAUnavailable(f"EJBCA certificate search: {error_message(status, answer)}")
        for item in _json(answer).get("certificates") or []:
            try:
                der = base64.b64decode(item["certificate"])
                if public_key_id(der) == key_id:
                    return await self._issued(json.dumps({"certificate": item["certificate"]})
                                              .encode())
            except (KeyError, TypeError, ValueError):
                continue
        return None

    async def _issued(self, answer: bytes) -> Issued:
        """The certificate of a 201 answer, with the CA chain read when the answer has none."""
        issued = _issued(answer)
        if issued.chain_der:
            return issued
        return Issued(issued.leaf_der, await self.ca_certs())

    # -- revocation, CA certificates, health --------------------------------
    async def revoke(self, cert_der: bytes, reason: RevocationReason) -> None:
        """Revoke by issuer DN and serial number; 409 means already revoked."""
        if reason not in REASONS:
            raise RevocationUnsupported(f"EJBCA REST cannot revoke with reason {reason.name}")
        cert = x509.load_der_x509_certificate(cert_der)
        issuer, serial = cert.issuer.rfc4514_string(), format(cert.serial_number, "X")
        url = self._url(
            "v1", "certificate", issuer, serial, "revoke", query=f"reason={REASONS[reason]}"
        )
        status, body = await self._call("revocation", "PUT", url)
        message = error_message(status, body)
        if status == 200:
            return
        if status == 409 or "already revoked" in message.lower():
            raise AlreadyRevoked(f"EJBCA: certificate {serial} is already revoked ({message})")
        if status >= 500:
            raise CAUnavailable(f"EJBCA revocation of {serial}: {message}")
        if status in (401, 403):
            raise CAConfigError(
                f"EJBCA refused our client certificate for revocation ({message}); "
                "its admin role needs revocation rights"
            )
        raise ConnectorError(f"EJBCA refused to revoke {serial} issued by {issuer}: {message}")

    async def ca_certs(self) -> tuple[bytes, ...]:
        """The configured CA's certificate and the chain above it."""
        subject_dn = await self._ca_subject_dn()
        pem = await self._get(
            "CA certificate download", "v1", "ca", subject_dn, "certificate", "download"
        )
        try:
            certs = [c.public_bytes(Encoding.DER) for c in x509.load_pem_x509_certificates(pem)]
        except ValueError as exc:
            raise CAProtocolError(
                f"EJBCA sent a CA certificate that does not parse: {exc}"
            ) from exc
        return order_chain(None, certs)

    async def _ca_subject_dn(self) -> str:
        cas = _json(await self._get("CA list", "v1", "ca")).get("certificate_authorities", [])
        if not isinstance(cas, list) or not all(isinstance(c, dict) for c in cas):
            raise CAProtocolError("EJBCA's CA list is not a list of objects")
        wanted = self.settings.ca_name
        matches = [c for c in cas if c.get("name") == wanted] if wanted else cas
        if len(matches) != 1:
            names = ", ".join(str(c.get("name")) for c in cas)
            raise CAConfigError(
                f"[cas.{self.name}] ca_name {wanted!r} does not pick one CA; EJBCA has: {names}"
            )
        return str(matches[0]["subject_dn"])

    async def check(self) -> None:
        """GET /v1/certificate/status must say OK, and the configured CA must exist."""
        status = _json(await self._get("health check", "v1", "certificate", "status")).get("status")
        if status != "OK":
            raise CAUnavailable(f"EJBCA REST reports status {status!r}")
        if self.settings.ca_name:
            await self._ca_subject_dn()


def _json(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise CAProtocolError(f"EJBCA sent something that is not JSON: {body[:120]!r}") from exc
    if not isinstance(doc, dict):
        raise CAProtocolError("EJBCA sent JSON that is not an object")
    return doc


def _issued(body: bytes) -> Issued:
    doc = _json(body)
    try:
        leaf = base64.b64decode(doc["certificate"])
        chain = [base64.b64decode(c) for c in doc.get("certificate_chain") or []]
        x509.load_der_x509_certificate(leaf)
    except (KeyError, TypeError, ValueError) as exc:
        raise CAProtocolError(
            f"EJBCA's enrollment answer lacks a usable certificate: {exc}"
        ) from exc
    return Issued(leaf, order_chain(leaf, chain))


def _maybe_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _finalize_failure(status: int, what: str, message: str) -> IssueResult:
    """A finalize answer that is no verdict: retried later, never a refusal."""
    if status in (401, 403):
        raise CAConfigError(f"EJBCA {what}: not authorized ({message}); the client "
                            "certificate's role needs approval and RA rights")
    if status >= 500:
        raise CAUnavailable(f"EJBCA {what}: {message}")
    raise CAProtocolError(f"EJBCA {what}: {message}; will ask again")



def _code_key(path: Path | None) -> bytes:
    """The key enrollment codes are derived with; made on first use (mode 0600)."""
    if path is None:
        return b""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        raise CAConfigError(f"cannot read the enrollment-code key {path}: {exc}; remove the "
                            "file to have a new one made (pending approvals then need their "
                            "codes reset in EJBCA)") from exc
    key = secrets.token_bytes(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key.hex() + "\n")
    except FileExistsError:  # another process made it first: use theirs
        return bytes.fromhex(path.read_text().strip())
    except OSError as exc:
        raise CAConfigError(f"cannot create the enrollment-code key {path}: {exc.strerror}; "
                            "check that the data directory is writable") from exc
    return key
