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

Pending approvals: EJBCA gives no request id for an enrollment that waits for
approval. The connector returns :class:`Pending` whose ``ref`` carries the
submission (username, profile names, CSR, and where the enrollment code is
kept, never the code itself). ``poll`` re-submits exactly that request: EJBCA
recognises the approved action and issues, or answers "waiting for approval"
again. With ``per_order`` the username is the same for every retry of an order,
so a retried order updates one end entity rather than creating several.
"""

from __future__ import annotations

import base64
import json
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
    RevocationReason,
    RevocationUnsupported,
)
from connectors.ejbca_wire import (
    REASONS,
    USERNAME_STRATEGIES,
    EnrollParams,
    choose_username,
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

    async def start(self) -> None:
        """Load the client certificate and open the session."""
        ctx = self.settings.tls.ssl_context(f"[cas.{self.name}]")
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
        # Without a configured code, a random one: the end entity is only ever used by us.
        return code or self.settings.enrollment_code or secrets.token_urlsafe(18)

    async def issue(self, request: IssueRequest) -> IssueResult:
        """Submit the CSR with pkcs10enroll."""
        return await self._enroll(self._params(request))

    async def poll(self, ref: str) -> IssueResult:
        """Re-submit the enrollment a pending ``ref`` describes (see the module docstring)."""
        return await self._enroll(EnrollParams.from_ref(ref))

    async def _enroll(self, params: EnrollParams) -> IssueResult:
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
        status, answer = await self._call("enrollment", "POST", url, body)
        if status in (200, 201):
            return _issued(answer)
        message = error_message(status, answer)
        return classify_refusal(
            status, message, params.to_ref(), self.settings.poll_interval_seconds
        )

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
