"""An EJBCA REST simulator over TLS with client-certificate authentication.

Endpoints under ``/ejbca/ejbca-rest-api``: ``POST v1/certificate/pkcs10enroll``,
``POST v1/certificate/{request_id}/finalize``, ``POST v1/certificate/search``,
``PUT v1/certificate/{issuer_dn}/{serial}/revoke?reason=R``,
``GET v1/certificate/{issuer_dn}/{serial}/revocationstatus``, ``GET v1/ca``,
``GET v1/ca/{subject_dn}/certificate/download``, ``GET v1/certificate/status``.
Errors are ``{"error_code": N, "error_message": "..."}``; like EJBCA 8,
``pkcs10enroll`` answers 400 for nearly everything.

No client certificate → 403; a certificate not under the simulator's CA fails
the TLS handshake; a certificate whose CN is not an administrator → 403.

Modes: ``auto`` (issue), ``approval`` (every enrollment opens an approval
request, as EJBCA does for an approval-gated end entity profile),
``offline`` (enroll 400 "CA is offline", other calls 503), ``down`` (503).

Approvals as EJBCA's REST reference documents them: with ``approval_style``
"202" the enrollment is answered 202 ``{"status_code", "info_message",
"link": ".../v1/certificate/<id>/finalize"}``; :meth:`approve` /
``POST /sim/approve/{username}`` approves that user's latest request; then
``finalize`` with the enrollment code answers 201 with the certificate (202
while waiting, 400 when rejected or already finalized). With "400" the
enrollment is refused with 400 "waiting for approval" and no request id, as
EJBCA 8's pkcs10enroll does.

Standalone: ``python -m tests.fakes.ejbca --port 8443 --mode approval`` prints
the URL and the client certificate, key and trust files to configure.
"""

from __future__ import annotations

import argparse
import base64
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from tests.fakes import standalone
from tests.fakes.pki import MiniCA

PREFIX = "/ejbca/ejbca-rest-api"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MODES = ("auto", "approval", "offline", "down")
REASONS = {
    "UNSPECIFIED",
    "KEY_COMPROMISE",
    "CA_COMPROMISE",
    "AFFILIATION_CHANGED",
    "SUPERSEDED",
    "CESSATION_OF_OPERATION",
    "CERTIFICATE_HOLD",
    "PRIVILEGES_WITHDRAWN",
    "AA_COMPROMISE",
}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error_code": status, "error_message": message}, status=status)


@dataclass
class EndEntity:
    """An EJBCA end entity as the simulator keeps it."""

    username: str
    password: str
    status: str = "NEW"  # NEW | WAITINGFORADDAPPROVAL | GENERATED
    serials: list[int] = field(default_factory=list)


@dataclass
class ApprovalRequest:
    """An approval request for one enrollment; finalize issues from its CSR once approved."""

    id: int
    username: str
    csr_der: bytes
    status: str = "waiting"  # waiting | approved | rejected


class EjbcaSimulator:
    """The simulated EJBCA: one CA, a few profiles, end entities and approvals."""

    def __init__(
        self,
        workdir: Path,
        mode: str = "auto",
        approval_style: str = "202",
        ca_name: str = "IssuingCA",
        certificate_profiles: tuple[str, ...] = ("SERVER", "ENDUSER"),
        end_entity_profiles: tuple[str, ...] = ("ACME", "EMPTY"),
        admins: tuple[str, ...] = ("RA Admin",),
    ) -> None:
        self.workdir = workdir
        self.mode, self.approval_style = mode, approval_style
        self.ca_name = ca_name
        self.ca = MiniCA("EJBCA")
        self.certificate_profiles, self.end_entity_profiles = (
            certificate_profiles,
            end_entity_profiles,
        )
        self.admins = admins
        self.entities: dict[str, EndEntity] = {}
        self.revoked: dict[int, str] = {}
        self.approvals: dict[int, ApprovalRequest] = {}
        self.enroll_calls = 0
        self.finalize_calls = 0
        self.ssl_context, _ = self.ca.server_tls(workdir)
        # Optional, as EJBCA does: no certificate gets a 403 body rather than a TLS alert.
        self.ssl_context.verify_mode = ssl.CERT_OPTIONAL
        self.ssl_context.load_verify_locations(
            cadata=self.ca.root.public_bytes(Encoding.PEM).decode()
        )
        self.trust_file = self.ca.write_trust(workdir / "ca.pem")
        self._runner: web.AppRunner | None = None
        self.url = ""

    @property
    def ca_dn(self) -> str:
        """The CA's subject DN as EJBCA writes it (CN first)."""
        return self.ca.cert.subject.rfc4514_string()

    def client_files(
        self, cn: str = "RA Admin", days: int = 30, expired: bool = False
    ) -> tuple[Path, Path]:
        """Write a client certificate and key for ``cn``; ``expired`` makes one that ran out."""
        start = datetime.now(UTC) - timedelta(days=days + 2) if expired else None
        leaf = self.ca.leaf(cn, client=True, days=days, start=start)
        stem = cn.lower().replace(" ", "-") + ("-expired" if expired else "")
        return self.ca.write_leaf(leaf, self.workdir, stem)

    def _latest(self, username: str) -> ApprovalRequest:
        return max((a for a in self.approvals.values() if a.username == username),
                   key=lambda a: a.id)

    def approve(self, username: str) -> None:
        """Approve the latest approval request of ``username``."""
        self._latest(username).status = "approved"

    def reject(self, username: str) -> None:
        """Reject the latest approval request of ``username``."""
        self._latest(username).status = "rejected"

    # -- middleware -------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/sim/"):
            return await handler(request)
        if self.mode == "down":
            return _error(503, "Service unavailable")
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        peer = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        if not peer:
            return _error(403, "Not authorized to resource /administrator. No client certificate.")
        cn = x509.load_der_x509_certificate(peer).subject.get_attributes_for_oid(
            NameOID.COMMON_NAME
        )
        if not cn or cn[0].value not in self.admins:
            return _error(
                403,
                "Not authorized to resource /ra_functionality/create_end_entity.",
            )
        return await handler(request)

    # -- endpoints --------------------------------------------------------
    async def enroll(self, request: web.Request) -> web.Response:
        """pkcs10enroll, with EJBCA 8's habit of answering 400 for most failures."""
        self.enroll_calls += 1
        try:
            doc = await request.json()
        except ValueError:
            return _error(400, "Malformed JSON")
        refusal = self._check_enroll(doc)
        if refusal is not None:
            return refusal
        try:
            csr_text = str(doc["certificate_request"])
            csr_der = x509.load_pem_x509_csr(csr_text.encode()).public_bytes(Encoding.DER)
        except (KeyError, ValueError):
            return _error(400, "Invalid certificate request: could not parse PKCS#10")
        entity = self.entities.setdefault(
            doc["username"], EndEntity(doc["username"], doc.get("password", ""))
        )
        entity.password = doc.get("password", "")
        if self.mode == "approval":
            return self._approval_gate(entity, csr_der, request)
        return self._issue(entity, csr_der, bool(doc.get("include_chain")))

    def _issue(self, entity: EndEntity, csr_der: bytes, include_chain: bool) -> web.Response:
        cert = self.ca.issue(csr_der)
        entity.serials.append(cert.serial_number)
        entity.status = "GENERATED"
        chain = [base64.b64encode(c).decode() for c in self.ca.chain_der] if include_chain else []
        return web.json_response(
            {
                "certificate": base64.b64encode(cert.public_bytes(Encoding.DER)).decode(),
                "serial_number": format(cert.serial_number, "X"),
                "response_format": "DER",
                "certificate_chain": chain,
            },
            status=201,
        )

    def _check_enroll(self, doc: dict[str, Any]) -> web.Response | None:
        if self.mode == "offline":
            return _error(400, f"CA '{self.ca_name}' is offline.")
        if doc.get("certificate_authority_name") != self.ca_name:
            return _error(
                400, f"CA with name {doc.get('certificate_authority_name')} doesn't exist."
            )
        if doc.get("certificate_profile_name") not in self.certificate_profiles:
            return _error(400, f"Could not find profile '{doc.get('certificate_profile_name')}'.")
        if doc.get("end_entity_profile_name") not in self.end_entity_profiles:
            return _error(
                400, f"End entity profile with name {doc.get('end_entity_profile_name')} not found."
            )
        if not doc.get("username"):
            return _error(400, "Username must not be empty.")
        return None

    def _approval_gate(self, entity: EndEntity, csr_der: bytes,
                       request: web.Request) -> web.Response:
        """Open an approval request; answer as the configured EJBCA version does."""
        approval = ApprovalRequest(101 + len(self.approvals), entity.username, csr_der)
        self.approvals[approval.id] = approval
        entity.status = "WAITINGFORADDAPPROVAL"
        if self.approval_style == "400":
            return _error(400, f"Request for end entity {entity.username} is waiting for "
                               "approval.")
        base = str(request.url).split("/v1/")[0]
        return web.json_response({
            "status_code": 202,
            "info_message": "Add End Entity Action have been added for approval by "
                            "authorized administrators.",
            "link": f"{base}/v1/certificate/{approval.id}/finalize",
        }, status=202)

    async def finalize(self, request: web.Request) -> web.Response:
        """finalize: the certificate of an approved enrollment, as documented."""
        self.finalize_calls += 1
        request_id = int(request.match_info["request_id"])
        doc = await request.json()
        approval = self.approvals.get(request_id)
        if approval is None:
            return _error(400, f"Could not find request with Id '{request_id}'")
        if doc.get("response_format") not in ("DER", "PEM", "P12", "JKS"):
            return _error(400, "Invalid parameter: response_format")
        if approval.status == "waiting":
            return web.json_response({
                "status_code": 202,
                "info_message": f"Request with Id '{request_id}' is still waiting for approval",
                "link": str(request.url)}, status=202)
        if approval.status == "rejected":
            return _error(400, f"Request with Id '{request_id}' has been rejected")
        entity = self.entities[approval.username]
        if entity.status == "GENERATED":
            return _error(400, f"Enrollment with Id '{request_id}' has already been finalized")
        if doc.get("password") != entity.password:
            return _error(403, "Wrong username or password")
        return self._issue(entity, approval.csr_der, include_chain=False)

    async def search(self, request: web.Request) -> web.Response:
        """Certificate search; QUERY matches the end entity's username exactly."""
        doc = await request.json()
        wanted = {c.get("value") for c in doc.get("criteria", []) if c.get("property") == "QUERY"}
        found = [self.ca.issued[serial] for name in wanted if name in self.entities
                 for serial in self.entities[name].serials]
        return web.json_response({"certificates": [
            {"certificate": base64.b64encode(c.public_bytes(Encoding.DER)).decode(),
             "serial_number": format(c.serial_number, "X"), "response_format": "DER"}
            for c in found], "more_results": False})

    def _find(self, request: web.Request) -> tuple[int, x509.Certificate | None]:
        issuer, serial_hex = request.match_info["issuer"], request.match_info["serial"]
        serial = int(serial_hex, 16)
        cert = self.ca.issued.get(serial)
        if cert is None or cert.issuer.rfc4514_string() != issuer:
            return serial, None
        return serial, cert

    async def revoke(self, request: web.Request) -> web.Response:
        """Revoke by issuer DN and hex serial."""
        if self.mode == "offline":
            return _error(503, "CA is offline.")
        serial, cert = self._find(request)
        reason = request.query.get("reason", "UNSPECIFIED")
        if reason not in REASONS:
            return _error(400, f"Invalid revocation reason: {reason}")
        if cert is None:
            return _error(404, "Certificate with the given issuer DN and serial number not found.")
        if serial in self.revoked:
            return _error(409, "Certificate is already revoked.")
        self.revoked[serial] = reason
        return web.json_response(
            {
                "issuer_dn": request.match_info["issuer"],
                "serial_number": format(serial, "X"),
                "revocation_reason": reason,
                "revoked": True,
                "message": "Successfully revoked",
            }
        )

    async def revocation_status(self, request: web.Request) -> web.Response:
        """Whether a certificate is revoked."""
        serial, cert = self._find(request)
        if cert is None:
            return _error(404, "Certificate not found.")
        return web.json_response(
            {
                "serial_number": format(serial, "X"),
                "revoked": serial in self.revoked,
                "revocation_reason": self.revoked.get(serial),
            }
        )

    async def list_cas(self, request: web.Request) -> web.Response:
        """The CA list."""
        return web.json_response(
            {
                "certificate_authorities": [
                    {
                        "id": 1,
                        "name": self.ca_name,
                        "subject_dn": self.ca_dn,
                        "issuer_dn": self.ca.root.subject.rfc4514_string(),
                        "external": False,
                    }
                ]
            }
        )

    async def download_ca(self, request: web.Request) -> web.Response:
        """The CA's certificate chain as PEM."""
        if request.match_info["subject"] != self.ca_dn:
            return _error(404, f"CA with DN: {request.match_info['subject']} does not exist.")
        pem = self.ca.cert.public_bytes(Encoding.PEM) + self.ca.root.public_bytes(Encoding.PEM)
        return web.Response(body=pem, content_type="application/x-pem-file")

    async def status(self, request: web.Request) -> web.Response:
        """Health."""
        if self.mode == "offline":
            return _error(503, "CA is offline.")
        return web.json_response({"status": "OK", "version": "1.0", "revision": "Simulator"})

    async def admin(self, request: web.Request) -> web.Response:
        """Simulator controls: approve / reject a username, switch mode."""
        action, arg = request.match_info["action"], request.match_info["arg"]
        if action == "mode" and arg in MODES:
            self.mode = arg
        elif action in {"approve", "reject"} and arg in self.entities:
            (self.approve if action == "approve" else self.reject)(arg)
        else:
            raise web.HTTPNotFound(text=f"unknown action or username: {action} {arg}\n")
        return web.json_response({"ok": True})

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_post(f"{PREFIX}/v1/certificate/pkcs10enroll", self.enroll)
        r.add_post(f"{PREFIX}/v1/certificate/search", self.search)
        r.add_post(f"{PREFIX}/v1/certificate/{{request_id:\\d+}}/finalize", self.finalize)
        r.add_get(f"{PREFIX}/v1/certificate/status", self.status)
        r.add_put(f"{PREFIX}/v1/certificate/{{issuer}}/{{serial}}/revoke", self.revoke)
        r.add_get(
            f"{PREFIX}/v1/certificate/{{issuer}}/{{serial}}/revocationstatus",
            self.revocation_status,
        )
        r.add_get(f"{PREFIX}/v1/ca", self.list_cas)
        r.add_get(f"{PREFIX}/v1/ca/{{subject}}/certificate/download", self.download_ca)
        r.add_post("/sim/{action}/{arg}", self.admin)
        return app

    async def start(self, port: int = 0) -> str:
        """Listen on 127.0.0.1; return the REST base URL."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=self.ssl_context).start()
        self.url = f"https://127.0.0.1:{self._runner.addresses[0][1]}{PREFIX}"
        return self.url

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()


async def _serve(args: argparse.Namespace) -> str:
    sim = EjbcaSimulator(Path(args.dir), mode=args.mode, approval_style=args.approval_style)
    url = await sim.start(args.port)
    cert, key = sim.client_files(days=365)
    return (
        f'EJBCA simulator ({args.mode}) at {url}\n[cas.ejbca] settings:\n  type = "ejbca"\n'
        f'  url = "{url}"\n  client_cert_file = "{cert}"\n  client_key_file = "{key}"\n'
        f'  ca_bundle_file = "{sim.trust_file}"\n  ca_name = "{sim.ca_name}"\n'
        f'  certificate_profile = "SERVER"\n  end_entity_profile = "ACME"\n'
        f"approve username U: curl --cacert {sim.trust_file} --cert {cert} --key {key} -X POST "
        f"{url.split(PREFIX)[0]}/sim/approve/U"
    )


def main() -> None:
    """Command line entry: run the simulator until interrupted."""
    p = standalone.parser(__doc__, 8443, "ejbca-sim", MODES)
    p.add_argument("--approval-style", choices=("202", "400"), default="202")
    standalone.run(p.parse_args(), _serve)


if __name__ == "__main__":
    main()
