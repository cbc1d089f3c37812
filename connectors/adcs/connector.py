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
    send_validity = true        # ValidityPeriod/ValidityPeriodUnits request attributes
    lookup_window = 20          # request ids searched for a submission whose answer was lost

Profile parameters (``[profiles.P.ca_params]``): ``template`` (the certificate
template's name, not its display name) and ``cert_attrib`` (extra
``Name:Value`` lines for CertAttrib, separated by ``;``).

Behaviour: the CSR is posted to certfnsh.asp. Issued → the certificate and its
PKCS#7 chain are fetched; pending → :class:`Pending` with the AD CS request id
as ``ref``, polled with ``certnew.cer?ReqID=N``; denied → :class:`Rejected`
with the CA's disposition message. Every other page (the CA service stopped,
an error code, "Disposition message: (none)") is not a verdict: a submission
is retried later, a pending request stays pending. Reads are retried; the
submission is not (a repeated POST would create a second request at the CA).

A submission whose answer is lost (timeout, connection dropped after sending,
or the certificate fetch failing after the CA gave a request id) raises
:class:`SubmissionInDoubt`; before any new POST, :meth:`lookup` asks certsrv
about the known request id, or searches the ``lookup_window`` request ids after
the highest one this connector has seen for a certificate with the CSR's key.
While one of those is still pending, the order waits rather than re-submit.
The highest request id seen is kept in ``<data_dir>/adcs-<name>.seen`` so the
search has a starting point after a restart too; only a connector that has
never seen a request id (a new data directory) submits again.

Validity: the profile's ``validity_days`` travels as the documented request
attributes ``ValidityPeriod:Days`` and ``ValidityPeriodUnits:N``; the CA
honours them only with ``EDITF_ATTRIBUTEENDDATE`` in its policy module's
EditFlags (``certutil -setreg policy\\EditFlags +EDITF_ATTRIBUTEENDDATE``), and
never beyond the template's validity period. ``check-config`` says so.

Not supported: revocation (certsrv has no revocation page; it needs DCOM,
MS-CSRA) raises :class:`RevocationUnsupported`, which the gateway answers with
a 4xx problem and records as an operator task. ``IssueRequest.subject_cn`` is
ignored: certsrv signs the CSR's subject as sent (an AD CS template can build
the subject from AD instead), and CertAttrib cannot change it without the
EDITF_ATTRIBUTESUBJECTALTNAME2 flag, which is a known privilege-escalation hole.
"""

from __future__ import annotations

import importlib.util
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import load_der_x509_csr

from connectors.adcs import pages
from connectors.adcs.auth import (
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
    SubmissionInDoubt,
    public_key_id,
    starting,
)
from connectors.http_common import HttpPolicy, TlsSettings, order_chain, translate, with_retries
from connectors.secrets import OptionReader

log = logging.getLogger(__name__)
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
    send_validity: bool = True
    lookup_window: int = 20
    seen_file: Path | None = None  # the highest request id seen, kept across restarts

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
            send_validity=r.boolean("send_validity", True),
            lookup_window=r.integer("lookup_window", 20, 0, 1000),
            seen_file=data_dir / f"adcs-{name}.seen",
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
        self._high_water = 0  # the highest AD CS request id seen: where a lost one may be

    async def start(self) -> None:
        """Build the TLS context and the authenticated transport; failures in one line."""
        with starting(self.name):
            self._start()

    def _start(self) -> None:
        s = self.settings
        self._high_water = _read_seen(s.seen_file)
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

    def _form(self, request: IssueRequest) -> dict[str, str]:
        attrib = [f"CertificateTemplate:{self._template(request)}"]
        if self.settings.send_validity:
            days = max(1, request.profile.validity.days)
            attrib += ["ValidityPeriod:Days", f"ValidityPeriodUnits:{days}"]
        extra = request.profile.params.get("cert_attrib", "")
        attrib += [line.strip() for line in extra.split(";") if line.strip()]
        csr_pem = load_der_x509_csr(request.csr_der).public_bytes(Encoding.PEM).decode()
        return {
            "Mode": "newreq",
            "CertRequest": csr_pem,
            "CertAttrib": "".join(a + "\r\n" for a in attrib),
            "FriendlyType": "Saved-Request Certificate",
            "TargetStoreFlags": "0",
            "SaveCert": "yes",
        }

    async def issue(self, request: IssueRequest) -> IssueResult:
        """Post the CSR to certfnsh.asp and follow the page's verdict."""
        form = self._form(request)
        try:
            reply = await self._call("submission", "POST", "certfnsh.asp", form)
        except CAUnavailable as exc:
            if isinstance(exc.__cause__, aiohttp.ClientConnectorError):
                raise  # never reached certsrv: nothing to look for
            raise SubmissionInDoubt(f"{exc}; looking for it before submitting again",
                                    f"after:{self._high_water}") from exc
        outcome = self._seen(pages.parse_submit_page(reply.text))
        if outcome.kind == pages.ISSUED:
            try:
                return await self._fetch_issued(outcome.request_id)
            except CAUnavailable as exc:
                raise SubmissionInDoubt(str(exc), f"id:{outcome.request_id}") from exc
        return self._verdict(outcome, "submission")

    def _seen(self, outcome: pages.SubmitOutcome) -> pages.SubmitOutcome:
        if outcome.request_id.isdigit():
            self._saw(int(outcome.request_id))
        return outcome

    def _saw(self, req_id: int) -> None:
        """Remember the highest request id, on disk too (a hint: losing it is harmless)."""
        if req_id <= self._high_water:
            return
        self._high_water = req_id
        if self.settings.seen_file is not None:
            try:
                self.settings.seen_file.write_text(f"{req_id}\n")
            except OSError as exc:
                log.warning("cannot keep the AD CS request id in %s: %s",
                            self.settings.seen_file, exc)

    def _verdict(self, outcome: pages.SubmitOutcome, what: str) -> IssueResult:
        """Pending or denied as the page says; any other page is no verdict at all."""
        if outcome.kind == pages.PENDING and outcome.request_id:
            return self._pending(outcome.request_id, outcome.message or "Taken Under Submission")
        if outcome.kind == pages.DENIED:
            return Rejected(outcome.message or "certsrv denied the request")
        if outcome.kind == pages.UNAVAILABLE:
            raise CAUnavailable(f"certsrv {what}: the CA service is unavailable "
                                f"({outcome.message}); will ask again")
        raise CAProtocolError(f"certsrv {what}: no verdict ({outcome.kind}: "
                              f"{outcome.message or 'no message'}); will ask again")

    def _pending(self, req_id: str, message: str) -> Pending:
        return Pending(
            ref=req_id,
            retry_after=self.settings.poll_interval_seconds,
            message=f"AD CS request {req_id}: {message}",
        )

    async def poll(self, ref: str) -> IssueResult:
        """Ask for the certificate of AD CS request ``ref`` (or go on searching a lost one)."""
        if ref.startswith("scan:"):
            return await self._rescan(ref)
        if not ref.isdigit():
            raise CAConfigError(f"{ref!r} is not an AD CS request id")
        return await self._fetch_issued(ref)

    async def _fetch_issued(self, req_id: str) -> IssueResult:
        reply = await self._read(
            f"certificate of request {req_id}", f"certnew.cer?ReqID={req_id}&Enc=b64"
        )
        if reply.content_type not in _CERT_TYPES:
            outcome = pages.parse_disposition(reply.text)
            if outcome.kind == pages.NO_DISPOSITION:
                # The CA service stopped mid-poll says "(none)": not a verdict. Keep waiting.
                return self._pending(req_id, "no disposition from certsrv (CA service down?)")
            return self._verdict(pages.SubmitOutcome(outcome.kind, req_id, outcome.message),
                                 f"poll of request {req_id}")
        leaf = pages.parse_cert(reply.body)
        chain = await self._read(
            f"chain of request {req_id}", f"certnew.p7b?ReqID={req_id}&Enc=b64"
        )
        return Issued(leaf, order_chain(leaf, pages.parse_p7b(chain.body)))

    # -- a submission whose answer was lost ---------------------------------
    async def lookup(self, request: IssueRequest, hint: str) -> IssueResult | None:
        """Find what certsrv did with an earlier submission of ``request``; None: nothing."""
        kind, _, value = hint.partition(":")
        if kind == "id" and value.isdigit():
            return await self._fetch_issued(value)
        if kind != "after" or not value.isdigit() or int(value) == 0:
            return None
        return await self._scan(int(value), public_key_id(request.csr_der, csr=True))

    async def _rescan(self, ref: str) -> IssueResult:
        _, after, key_id = ref.split(":", 2)
        if not after.isdigit():
            raise CAConfigError(f"{ref!r} is not an AD CS lookup reference")
        found = await self._scan(int(after), key_id)
        if found is not None:
            return found
        last = int(after) + self.settings.lookup_window
        return Rejected(f"certsrv holds no request from this order: its answer was lost and "
                        f"no certificate for this key is among requests {int(after) + 1}-{last}; "
                        "order again")

    async def _scan(self, after: int, key_id: str) -> IssueResult | None:
        """Search request ids after ``after`` for our key; wait while one is undecided."""
        undecided = ""
        for req_id in range(after + 1, after + 1 + self.settings.lookup_window):
            reply = await self._read(f"lookup of request {req_id}",
                                     f"certnew.cer?ReqID={req_id}&Enc=b64")
            if reply.content_type in _CERT_TYPES:
                if public_key_id(pages.parse_cert(reply.body)) == key_id:
                    self._saw(req_id)
                    return await self._fetch_issued(str(req_id))
                continue
            outcome = pages.parse_disposition(reply.text)
            if outcome.kind in (pages.PENDING, pages.NO_DISPOSITION):
                undecided = undecided or str(req_id)
            elif outcome.kind not in (pages.DENIED, pages.ERROR):
                raise CAUnavailable(f"certsrv lookup of request {req_id}: {outcome.message}")
        if undecided:  # may be ours: wait for its verdict rather than submit again
            return self._pending(f"scan:{after}:{key_id}",
                                 f"request {undecided} is undecided and may be this one")
        return None

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


def _read_seen(path: Path | None) -> int:
    """The highest request id an earlier run saw (0: none, or unreadable)."""
    try:
        return int(path.read_text().strip()) if path is not None else 0
    except (OSError, ValueError):
        return 0
