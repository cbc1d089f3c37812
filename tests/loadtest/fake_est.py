"""A tiny EST server (simpleenroll only) that signs with cryptography, for testing the EST mode.

It answers 202 + ``Retry-After: 0`` to the first POST of each CSR (so the
client's re-POST path runs), checks HTTP Basic credentials when given, and
returns a base64 PKCS#7 certs-only body with 64-column lines.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections import Counter

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake EST CA")])


class FakeEst:
    """State of the fake server: its CA key, seen CSRs and counters."""

    def __init__(self, basic_auth: str = "", pend_first: bool = True) -> None:
        self.basic_auth = basic_auth
        self.pend_first = pend_first
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.seen: set[bytes] = set()
        self.stats: Counter[str] = Counter()

    def _authorized(self, request: web.Request) -> bool:
        if not self.basic_auth:
            return True
        expected = "Basic " + base64.b64encode(self.basic_auth.encode()).decode()
        return request.headers.get("Authorization") == expected

    def _issue(self, csr: x509.CertificateSigningRequest) -> bytes:
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(CA_NAME)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )
        der = pkcs7.serialize_certificates([cert], serialization.Encoding.DER)
        text = base64.b64encode(der)
        return b"\n".join(text[i : i + 64] for i in range(0, len(text), 64))

    async def simpleenroll(self, request: web.Request) -> web.Response:
        """POST /.well-known/est[/label]/simpleenroll."""
        self.stats["requests"] += 1
        if not self._authorized(request):
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="est"'})
        if request.content_type != "application/pkcs10":
            return web.Response(status=415)
        der = base64.b64decode(b"".join((await request.read()).split()))
        csr = x509.load_der_x509_csr(der)
        if self.pend_first and der not in self.seen:
            self.seen.add(der)
            self.stats["pending"] += 1
            return web.Response(status=202, headers={"Retry-After": "0"})
        self.stats["issued"] += 1
        return web.Response(
            body=self._issue(csr),
            headers={
                "Content-Type": "application/pkcs7-mime; smime-type=certs-only",
                "Content-Transfer-Encoding": "base64",
            },
        )

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_post("/.well-known/est/simpleenroll", self.simpleenroll)
        app.router.add_post("/.well-known/est/{label}/simpleenroll", self.simpleenroll)
        return app
