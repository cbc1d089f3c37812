"""Microsoft AD CS through the certsrv web enrollment pages.

Configuration (``[cas.NAME]``, ``type = "adcs"``)::

    url = "https://ca.example.net/certsrv"   # required, https only
    auth = "ntlm"               # ntlm (default) | negotiate | kerberos | basic | client_cert
    username = "EXAMPLE\\\\svc-acme" # not for client_cert; optional for kerberos (uses the ccache)
    password_file = "/run/secrets/adcs"   # or password_env = "ADCS_PASSWORD"; never inline
    channel_bindings = true     # send tls-server-end-point with NTLM/Negotiate
    ca_bundle_file = "adcs-root.pem"     # trust for certsrv's TLS certificate
    client_cert_file / client_key_file (+ client_key_passphrase_file/_env)
    pkcs12_file (+ pkcs12_passphrase_file/_env)       # TLS client certificate
    default_template = "WebServer"       # when a profile names none
    timeout_seconds = 30, connect_timeout_seconds = 10, retries = 2,
    retry_backoff_seconds = 1, poll_interval_seconds = 60, max_connections = 4
    user_agent = "Mozilla/5.0 (compatible; acme-gateway)"

Profile parameters (``[profiles.P.ca_params]``): ``template`` (the certificate
template's name, not its display name) and ``cert_attrib`` (extra
``Name:Value`` lines for CertAttrib, separated by ``;``).

Behaviour: the CSR is posted to certfnsh.asp. Issued → the certificate and its
PKCS#7 chain are fetched; pending → :class:`Pending` with the AD CS request id
as ``ref``, polled with ``certnew.cer?ReqID=N``; denied → :class:`Rejected`
with the CA's disposition message. Reads are retried; the submission is not
(a repeated POST would create a second request at the CA).

Not supported: revocation (certsrv has no revocation page; it needs DCOM,
MS-CSRA) raises :class:`RevocationUnsupported`. ``IssueRequest.subject_cn`` is
ignored: certsrv signs the CSR's subject as sent (an AD CS template can build
the subject from AD instead), and CertAttrib cannot change it without the
EDITF_ATTRIBUTESUBJECTALTNAME2 flag, which is a known privilege-escalation hole.
"""

from __future__ import annotations

import importlib.util
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import load_der_x509_csr

from connectors import adcs_pages as pages
from connectors.adcs_auth import (
    Reply,
    SimpleTransport,
    SpnegoCredentials,
    SpnegoTransport,
    Transport,
)
from connectors.base import (
    CAConfigError,
    CAProtocolError,
    CAUnavailable,
    Issued,
    IssueRequest,
    IssueResult,
    Pending,
    Rejected,
    RevocationReason,
    RevocationUnsupported,
)
from connectors.http_common import HttpPolicy, TlsSettings, order_chain, translate, with_retries
from connectors.secrets import OptionReader

AUTH_MODES = ("ntlm", "negotiate", "kerberos", "basic", "client_cert")
_CERT_TYPES = {
    "application/pkix-cert",
    "application/x-x509-user-cert",
    "application/x-x509-ca-cert",
}


@dataclass(frozen=True)
class CertsrvSettings:
    """Settings of one certsrv connector; ``repr`` never shows the password."""

    url: str
    auth: str = "ntlm"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    channel_bindings: bool = True
    tls: TlsSettings = field(default_factory=TlsSettings)
    http: HttpPolicy = field(default_factory=HttpPolicy)
    default_template: str = ""
    poll_interval_seconds: float = 60.0
    max_connections: int = 4
    user_agent: str = "Mozilla/5.0 (compatible; acme-gateway)"

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any], data_dir: Path, name: str = "adcs"
    ) -> CertsrvSettings:
        """Parse the ``[cas.NAME]`` table; raise CAConfigError naming the key."""
        r = OptionReader(name, options, data_dir)
        url = r.required_str("url", "the certsrv base URL, e.g. https://ca.example.net/certsrv")
        if not url.startswith("https://"):
            raise r.error("url", "must start with https:// (credentials and CSRs travel on it)")
        auth = r.choice("auth", "ntlm", AUTH_MODES)
        settings = cls(
            url=url.rstrip("/"),
            auth=auth,
            username=r.string("username") or None,
            password=r.secret("password"),
            channel_bindings=r.boolean("channel_bindings", True),
            tls=TlsSettings.from_reader(r),
            http=HttpPolicy.from_reader(r),
            default_template=r.string("default_template"),
            poll_interval_seconds=r.number("poll_interval_seconds", 60.0, 1.0),
            max_connections=r.integer("max_connections", 4, 1, 64),
            user_agent=r.string("user_agent", "Mozilla/5.0 (compatible; acme-gateway)"),
        )
        r.check_unknown()
        settings._validate(r)
        return settings

    def _validate(self, r: OptionReader) -> None:
        if self.auth == "client_cert" and not self.tls.has_client_cert:
            raise r.error(
                "auth", "client_cert needs client_cert_file/client_key_file or pkcs12_file"
            )
        if self.auth in {"ntlm", "negotiate", "basic"} and not (self.username and self.password):
            raise r.error(
                "username", f"auth = {self.auth} needs username and password_file/password_env"
            )
        if self.auth == "kerberos" and importlib.util.find_spec("gssapi") is None:
            raise r.error(
                "auth", "kerberos needs pyspnego's Kerberos extra: pip install 'pyspnego[kerberos]'"
            )


class CertsrvConnector:
    """Issues through AD CS web enrollment (certsrv)."""

    def __init__(
        self, name: str, settings: CertsrvSettings, session: aiohttp.ClientSession | None = None
    ) -> None:
        self.name = name
        self.settings = settings
        self._shared = session  # unused: certsrv needs its own TLS and connection handling
        self._transport: Transport | None = None

    async def start(self) -> None:
        """Build the TLS context and the authenticated transport."""
        s = self.settings
        ctx = s.tls.ssl_context(f"[cas.{self.name}]")
        headers = {"User-Agent": s.user_agent}
        if s.auth in {"ntlm", "negotiate", "kerberos"}:
            creds = SpnegoCredentials(s.auth, s.username, s.password, s.channel_bindings)
            self._transport = SpnegoTransport(
                creds, ctx, s.http.client_timeout(), headers, s.max_connections
            )
            return
        basic = (s.username or "", s.password or "") if s.auth == "basic" else None
        connector = aiohttp.TCPConnector(ssl=ctx, limit=s.max_connections * 4)
        session = aiohttp.ClientSession(
            connector=connector, timeout=s.http.client_timeout(), headers=headers
        )
        self._transport = SimpleTransport(session, basic)

    async def aclose(self) -> None:
        """Close every connection to certsrv."""
        if self._transport is not None:
            await self._transport.aclose()
            self._transport = None

    async def _call(
        self, what: str, method: str, page: str, data: dict[str, str] | None = None
    ) -> Reply:
        if self._transport is None:
            raise CAConfigError(f"connector {self.name!r} used before start()")
        try:
            reply = await self._transport.request(method, f"{self.settings.url}/{page}", data)
        except (aiohttp.ClientError, OSError, TimeoutError, ssl.SSLError) as exc:
            raise translate(exc, f"certsrv {what}") from exc
        if reply.status == 401:
            raise CAConfigError(
                f"certsrv refused our credentials on {what} (HTTP 401); check username, "
                "password_file/password_env or the client certificate"
            )
        if reply.status >= 500:
            raise CAUnavailable(
                f"certsrv {what}: HTTP {reply.status}: {pages.snippet(reply.text)!r}"
            )
        if reply.status != 200:
            raise CAProtocolError(
                f"certsrv {what}: unexpected HTTP {reply.status}: {pages.snippet(reply.text)!r}"
            )
        return reply

    async def _read(self, what: str, page: str) -> Reply:
        """An idempotent GET, retried on transient failures."""
        return await with_retries(
            self.settings.http, f"certsrv {what}", lambda: self._call(what, "GET", page)
        )

    def _template(self, request: IssueRequest) -> str:
        template = request.profile.params.get("template") or self.settings.default_template
        if not template:
            raise CAConfigError(
                f"profile {request.profile.name!r} names no AD CS template: set "
                f"ca_params.template, or default_template in [cas.{self.name}]"
            )
        return template

    async def issue(self, request: IssueRequest) -> IssueResult:
        """Post the CSR to certfnsh.asp and follow the page's verdict."""
        attrib = [f"CertificateTemplate:{self._template(request)}"]
        extra = request.profile.params.get("cert_attrib", "")
        attrib += [line.strip() for line in extra.split(";") if line.strip()]
        csr_pem = load_der_x509_csr(request.csr_der).public_bytes(Encoding.PEM).decode()
        form = {
            "Mode": "newreq",
            "CertRequest": csr_pem,
            "CertAttrib": "".join(a + "\r\n" for a in attrib),
            "FriendlyType": "Saved-Request Certificate",
            "TargetStoreFlags": "0",
            "SaveCert": "yes",
        }
        reply = await self._call("submission", "POST", "certfnsh.asp", form)
        outcome = pages.parse_submit_page(reply.text)
        if outcome.kind == "issued":
            return await self._fetch_issued(outcome.request_id)
        if outcome.kind == "pending":
            return self._pending(outcome.request_id, "Taken Under Submission")
        return Rejected(
            outcome.message or "certsrv denied the request without a disposition message"
        )

    def _pending(self, req_id: str, message: str) -> Pending:
        return Pending(
            ref=req_id,
            retry_after=self.settings.poll_interval_seconds,
            message=f"AD CS request {req_id}: {message}",
        )

    async def poll(self, ref: str) -> IssueResult:
        """Ask for the certificate of AD CS request ``ref``."""
        if not ref.isdigit():
            raise CAConfigError(f"{ref!r} is not an AD CS request id")
        return await self._fetch_issued(ref)

    async def _fetch_issued(self, req_id: str) -> IssueResult:
        reply = await self._read(
            f"certificate of request {req_id}", f"certnew.cer?ReqID={req_id}&Enc=b64"
        )
        if reply.content_type not in _CERT_TYPES:
            disposition = pages.parse_disposition(reply.text)
            if pages.is_under_submission(disposition):
                return self._pending(req_id, disposition)
            return Rejected(disposition)
        leaf = pages.parse_cert(reply.body)
        chain = await self._read(
            f"chain of request {req_id}", f"certnew.p7b?ReqID={req_id}&Enc=b64"
        )
        return Issued(leaf, order_chain(leaf, pages.parse_p7b(chain.body)))

    async def revoke(self, cert_der: bytes, reason: RevocationReason) -> None:
        """Always refused: certsrv offers no revocation."""
        raise RevocationUnsupported(
            "revocation is not supported by certsrv (AD CS web enrollment has no revocation "
            "page); revoke in the Certification Authority console or with certutil -revoke "
            f"(connector {self.name!r})"
        )

    async def _renewals(self) -> int:
        return pages.parse_renewals((await self._read("CA page", "certcarc.asp")).text)

    async def ca_certs(self) -> tuple[bytes, ...]:
        """The CA's current certificate and the chain above it."""
        renewal = await self._renewals()
        reply = await self._read("CA chain", f"certnew.p7b?ReqID=CACert&Renewal={renewal}&Enc=b64")
        certs = pages.parse_p7b(reply.body)
        if not certs:
            raise CAProtocolError("certsrv sent an empty CA chain")
        return order_chain(None, certs)

    async def check(self) -> None:
        """Authenticate and read certcarc.asp; raise when that fails."""
        await self._renewals()
