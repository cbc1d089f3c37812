"""A certsrv (AD CS web enrollment) simulator over HTTPS.

Pages: ``certfnsh.asp`` (Mode=newreq / chkpnd), ``certnew.cer``, ``certnew.p7b``
(ReqID=N or CACert), ``certcarc.asp``. Authentication: ``basic``, ``ntlm``
(server side by pyspnego; connection-based, checks the TLS channel binding),
``client_cert`` (TLS), or ``none``. Modes:

* ``auto``     – issue at once
* ``pending``  – every request waits until :meth:`approve` / ``POST /sim/approve/N``
* ``deny``     – deny every request ("Denied by Policy Module")
* ``slow``     – hold every answer until :meth:`release` (or ``slow_seconds``)
* ``down``     – HTTP 503, as IIS does when the CA service is stopped
* ``garbage``  – 200 pages that say nothing certsrv would
* ``stopped``  – IIS up, CA service stopped: submissions get an RPC error page,
  certnew.cer a disposition page that says "(none)"
* ``lost``     – submissions are processed as in ``auto``, but their answer is
  held until :meth:`release` (or ``slow_seconds``): the client times out

Validity: ``ValidityPeriod``/``ValidityPeriodUnits`` request attributes set the
validity when ``attribute_end_date`` is true (the CA's EDITF_ATTRIBUTEENDDATE
flag), never beyond the template's ``TEMPLATE_DAYS``; otherwise the template's
validity applies.

Admin endpoints (no auth, loopback only): ``POST /sim/approve/{id}``,
``POST /sim/deny/{id}``, ``POST /sim/mode/{mode}``, ``GET /sim/requests``.

Standalone: ``python -m tests.fakes.certsrv --port 8081 --mode pending --auth basic``
prints the URL, the CA file to trust, the credentials file and how to approve.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import spnego
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from connectors.adcs.auth import channel_bindings
from tests.fakes import certsrv_pages as pages
from tests.fakes import standalone
from tests.fakes.pki import MiniCA

MODES = ("auto", "pending", "deny", "slow", "down", "garbage", "stopped", "lost")
TEMPLATE_DAYS = 730  # the WebServer template's validity period: two years
RPC_DOWN = "The RPC server is unavailable. 0x800706ba (WIN32: 1722 RPC_S_SERVER_UNAVAILABLE)"
UNSUPPORTED_TEMPLATE = (
    "Denied by Policy Module  0x80094800, The request was for a certificate template that is "
    "not supported by the Active Directory Certificate Services policy: {0}."
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class SimRequest:
    """One request the simulated CA has seen."""

    req_id: int
    csr_der: bytes
    template: str
    status: str  # issued | pending | denied
    cert: x509.Certificate | None = None
    message: str = ""
    days: int = TEMPLATE_DAYS


class CertsrvSimulator:
    """The simulated CA, its pages and its authentication."""

    def __init__(
        self,
        workdir: Path,
        mode: str = "auto",
        auth: str = "basic",
        username: str = "EXAMPLE\\alice",
        password: str = "s3cret-Pa55",
        templates: tuple[str, ...] = ("WebServer", "User"),
        slow_seconds: float = 30.0,
        attribute_end_date: bool = True,
    ) -> None:
        self.workdir = workdir
        self.mode = mode
        self.auth = auth
        self.username, self.password = username, password
        self.templates = templates
        self.slow_seconds = slow_seconds
        self.attribute_end_date = attribute_end_date
        self.ca = MiniCA("Certsrv")
        self.requests: dict[int, SimRequest] = {}
        self.auth_legs: list[str] = []  # "basic", "ntlm-1", "ntlm-2", "ntlm-ok" per leg, for tests
        self._next_id = 41
        self._release = asyncio.Event()
        self.submitted = asyncio.Event()  # set whenever a request arrives
        self.fail_next = 0  # answer this many next requests with 503, then recover
        # NTLM state per TCP connection (keyed by transport; closed ones are pruned)
        self._ntlm: dict[Any, Any] = {}
        self._authed: set[Any] = set()
        self.ssl_context, server = self.ca.server_tls(
            workdir, require_client_cert=auth == "client_cert"
        )
        self._bindings = channel_bindings(server.cert.public_bytes(Encoding.DER))
        self.trust_file = self.ca.write_trust(workdir / "ca.pem")
        self.password_file = workdir / "password"
        self.password_file.write_text(password + "\n")
        self._runner: web.AppRunner | None = None
        self._saved_env: str | None = None
        self.url = ""

    # -- administration --------------------------------------------------
    def approve(self, req_id: int) -> None:
        """Issue a pending request, as a certificate manager would."""
        req = self.requests[req_id]
        req.cert, req.status = self.ca.issue(req.csr_der, days=req.days), "issued"

    def deny(self, req_id: int, message: str = "Denied by Administrator") -> None:
        """Deny a pending request."""
        req = self.requests[req_id]
        req.status, req.message = "denied", message

    def release(self) -> None:
        """Let answers held in slow mode go."""
        self._release.set()

    # -- authentication --------------------------------------------------
    def _challenge(self, schemes: list[str]) -> web.Response:
        resp = web.Response(status=401, text=pages.unauthorized_page(), content_type="text/html")
        for scheme in schemes:
            resp.headers.add("WWW-Authenticate", scheme)
        return resp

    def _basic_ok(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        self.auth_legs.append("basic")
        user, _, pw = base64.b64decode(token).decode().partition(":")
        return user == self.username and pw == self.password

    def _ntlm_step(self, request: web.Request, header: str) -> web.Response | None:
        """One NTLM leg; None when the connection is now authenticated."""
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in {"ntlm", "negotiate"} or not token:
            return self._challenge(["Negotiate", "NTLM"])
        conn = request.transport
        if conn not in self._ntlm:
            protocol = "negotiate" if scheme.lower() == "negotiate" else "ntlm"
            self._ntlm[conn] = spnego.server(protocol=protocol, channel_bindings=self._bindings)
        try:
            out = self._ntlm[conn].step(base64.b64decode(token))
        except spnego.exceptions.SpnegoError:
            del self._ntlm[conn]
            self.auth_legs.append("ntlm-refused")
            return self._challenge(["Negotiate", "NTLM"])
        if self._ntlm[conn].complete:
            self.auth_legs.append("ntlm-ok")
            del self._ntlm[conn]
            self._authed.add(conn)
            return None
        self.auth_legs.append("ntlm-1")
        return self._challenge([f"{scheme} {base64.b64encode(out or b'').decode()}"])

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/sim/"):
            return await handler(request)
        await request.read()  # drain the body so the connection stays usable after a 401
        if self.mode == "slow":
            await self._hold()
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(
                status=503, text="<h1>Service Unavailable</h1>", content_type="text/html"
            )
        if self.mode == "down":
            return web.Response(
                status=503, text="<h1>Service Unavailable</h1>", content_type="text/html"
            )
        header = request.headers.get("Authorization", "")
        if self.auth == "basic" and not self._basic_ok(header):
            return self._challenge(['Basic realm="ca.example.net"'])
        self._authed = {t for t in self._authed if not t.is_closing()}
        if self.auth == "ntlm" and request.transport not in self._authed:
            refused = self._ntlm_step(request, header)
            if refused is not None:
                return refused
        if self.mode == "garbage":
            return _html("<html><body>Under maintenance. Try later.</body></html>")
        return await handler(request)

    # -- pages -----------------------------------------------------------
    async def certfnsh(self, request: web.Request) -> web.Response:
        """Submission (Mode=newreq) and pending check (Mode=chkpnd)."""
        form = await request.post()
        if self.mode == "stopped":
            return _html(pages.error_page(RPC_DOWN))
        if form.get("Mode") == "chkpnd":
            req = self.requests.get(int(str(form.get("ReqID", "0"))))
            return _html(self._status_page(req, browser=_is_browser(request)))
        try:
            csr = x509.load_pem_x509_csr(str(form.get("CertRequest", "")).encode())
        except ValueError:
            return _html(
                pages.error_page(
                    "The request contains no certificate template information. 0x80094801"
                )
            )
        match = re.search(r"CertificateTemplate:([^\r\n]+)", str(form.get("CertAttrib", "")))
        template = match.group(1).strip() if match else ""
        req = SimRequest(self._next_id, csr.public_bytes(Encoding.DER), template, "pending",
                         days=self._validity_days(str(form.get("CertAttrib", ""))))
        self._next_id += 1
        self.requests[req.req_id] = req
        self.submitted.set()
        if template not in self.templates:
            req.status, req.message = "denied", UNSUPPORTED_TEMPLATE.format(template)
        elif self.mode == "deny":
            req.status, req.message = (
                "denied",
                "Denied by Policy Module  The request was denied by the CA's policy.",
            )
        elif self.mode != "pending":
            self.approve(req.req_id)
        if self.mode == "lost":  # the request is taken; its answer never reaches the client
            await self._hold()
        return _html(self._status_page(req, browser=_is_browser(request)))

    def _validity_days(self, attrib: str) -> int:
        units = re.search(r"ValidityPeriodUnits:(\d+)", attrib)
        period = re.search(r"ValidityPeriod:(\w+)", attrib)
        if not (self.attribute_end_date and units and period):
            return TEMPLATE_DAYS
        per_unit = {"days": 1, "weeks": 7, "months": 30, "years": 365}.get(
            period.group(1).lower(), 0)
        return min(TEMPLATE_DAYS, int(units.group(1)) * per_unit) or TEMPLATE_DAYS

    async def _hold(self) -> None:
        try:
            await asyncio.wait_for(self._release.wait(), self.slow_seconds)
        except TimeoutError:
            pass

    @staticmethod
    def _status_page(req: SimRequest | None, browser: bool) -> str:
        if req is None:
            return pages.error_page("The request ID does not exist. 0x80094004")
        if req.status == "issued":
            return pages.issued_page(req.req_id, browser)
        if req.status == "denied":
            return pages.denied_page(req.req_id, req.message)
        return pages.pending_page(req.req_id)

    def _chain(self, req_id: str) -> list[x509.Certificate]:
        if req_id == "CACert":
            return [self.ca.cert, self.ca.root]
        req = self.requests.get(int(req_id)) if req_id.isdigit() else None
        if req is None or req.cert is None:
            return []
        return [req.cert, self.ca.cert, self.ca.root]

    async def certnew_cer(self, request: web.Request) -> web.Response:
        """The certificate of a request (or the CA's), or a disposition page."""
        req_id = request.query.get("ReqID", "")
        if self.mode == "stopped" and req_id.isdigit():
            return _html(pages.disposition_page("(none)"))  # no verdict from a stopped CA
        chain = self._chain(req_id)
        if not chain:
            req = self.requests.get(int(req_id)) if req_id.isdigit() else None
            if req is None:
                return _html(pages.error_page("The request ID does not exist. 0x80094004"))
            msg = "Taken Under Submission" if req.status == "pending" else req.message
            return _html(pages.disposition_page(msg))
        der = chain[0].public_bytes(Encoding.DER)
        body = pages.pem_crlf(der) if request.query.get("Enc") == "b64" else der
        return web.Response(body=body, content_type="application/pkix-cert")

    async def certnew_p7b(self, request: web.Request) -> web.Response:
        """The PKCS#7 chain of a request or of the CA (b64 labelled CERTIFICATE)."""
        chain = self._chain(request.query.get("ReqID", ""))
        if not chain:
            return _html(pages.error_page("The request ID does not exist. 0x80094004"))
        der = pkcs7.serialize_certificates(chain, Encoding.DER)
        body = pages.pem_crlf(der) if request.query.get("Enc") == "b64" else der
        return web.Response(body=body, content_type="application/x-pkcs7-certificates")

    async def certcarc(self, request: web.Request) -> web.Response:
        """The CA certificate page."""
        return _html(pages.carc_page(0))

    async def admin(self, request: web.Request) -> web.Response:
        """Simulator controls: approve / deny / mode / list."""
        action, arg = request.match_info["action"], request.match_info.get("arg", "")
        if action == "requests":
            return web.json_response(
                {
                    str(k): {"status": r.status, "template": r.template}
                    for k, r in self.requests.items()
                }
            )
        if action == "mode" and arg in MODES:
            self.mode = arg
        elif action in {"approve", "deny"} and arg.isdigit() and int(arg) in self.requests:
            (self.approve if action == "approve" else self.deny)(int(arg))
        else:
            raise web.HTTPNotFound(text=f"unknown action or request: {action} {arg}\n")
        return web.json_response({"ok": True})

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/certsrv/certfnsh.asp", self.certfnsh)
        app.router.add_get("/certsrv/certnew.cer", self.certnew_cer)
        app.router.add_get("/certsrv/certnew.p7b", self.certnew_p7b)
        app.router.add_get("/certsrv/certcarc.asp", self.certcarc)
        app.router.add_get("/sim/{action}", self.admin)
        app.router.add_post("/sim/{action}/{arg}", self.admin)
        return app

    async def start(self, port: int = 0) -> str:
        """Listen on 127.0.0.1 over TLS; return the certsrv base URL."""
        if self.auth == "ntlm":
            users = self.workdir / "ntlm_users"
            domain, _, user = self.username.rpartition("\\")
            users.write_text(f"{domain}:{user}:{self.password}\n")
            self._saved_env = os.environ.get("NTLM_USER_FILE")
            os.environ["NTLM_USER_FILE"] = str(users)  # pyspnego's acceptor reads its users here
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=self.ssl_context)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.url = f"https://127.0.0.1:{bound}/certsrv"
        return self.url

    async def stop(self) -> None:
        """Stop listening."""
        self.release()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.auth == "ntlm":  # leave the process environment as we found it
            if self._saved_env is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = self._saved_env


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html")


def _is_browser(request: web.Request) -> bool:
    return "mozilla" in request.headers.get("User-Agent", "").lower()


async def _serve(args: argparse.Namespace) -> str:
    workdir = Path(args.dir)
    sim = CertsrvSimulator(workdir, mode=args.mode, auth=args.auth)
    url = await sim.start(args.port)
    client = ""
    if args.auth == "client_cert":
        cert, key = sim.ca.write_leaf(
            sim.ca.leaf("gateway", client=True, days=365), workdir, "client"
        )
        client = f'\n  client_cert_file = "{cert}"\n  client_key_file = "{key}"'
    return (
        f"certsrv simulator ({args.mode}, auth {args.auth}) at {url}\n"
        f'[cas.adcs] settings:\n  type = "adcs"\n  url = "{url}"\n  auth = "{args.auth}"\n'
        f"  username = '{sim.username}'\n  password_file = \"{sim.password_file}\"\n"
        f'  ca_bundle_file = "{sim.trust_file}"{client}\n'
        f"approve request N: curl --cacert {sim.trust_file} -X POST "
        f"{url.removesuffix('/certsrv')}/sim/approve/N"
    )


def main() -> None:
    """Command line entry: run the simulator until interrupted."""
    p = standalone.parser(__doc__, 8081, "certsrv-sim", MODES)
    p.add_argument("--auth", choices=("basic", "ntlm", "client_cert", "none"), default="basic")
    standalone.run(p.parse_args(), _serve)


if __name__ == "__main__":
    main()
