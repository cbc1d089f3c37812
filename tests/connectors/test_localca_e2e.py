"""End to end: lego → gateway (ACME) → local CA with its key in SoftHSM2 → OCSP and CRL.

The gateway's real app runs in this process with the /pkix routes mounted;
lego obtains a certificate over HTTP-01 (validated for real on a loopback
port, resolved through a loopback DNS responder), then revokes it; the OCSP
responder and the CRL at the URLs written into the certificate follow.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from gateway import cli, config, pkix_listener, tls
from gateway.app import build_connectors, create_app
from gateway.core.pkix import PkixService
from gateway.pkix.routes import PKIX_SERVICE, add_routes
from tests.conftest import require_tool
from tests.e2e.harness import fetch_crl, free_port, run, to_toml
from tests.pkix.localca_support import SOFTHSM_LIBRARY, softhsm
from tests.validation.dnsserver import DnsResponder

DOMAIN = "hsm.gateway.test"
CLIENT_TIMEOUT = 90.0


def _document(tmp: Path, dns_port: int, http01: int, https: int) -> dict[str, object]:
    hsm = softhsm()
    return {
        "server": {"data_dir": str(tmp / "gw"), "listen": "127.0.0.1", "https_port": https,
                   "pkix_http_port": free_port()},
        "acme": {"finalize_wait_seconds": 2.0, "retry_after_seconds": 1},
        "validation": {
            "resolvers": [f"127.0.0.1:{dns_port}"],
            "allow_loopback": True,
            "http01_port": http01,
            "attempts": 1,
            "challenge_types": ["http-01"],
        },
        "cas": {
            "hsm": {
                "type": "local",
                "key_backend": "pkcs11",
                "pkcs11_library": SOFTHSM_LIBRARY,
                "token_label": "e2e",
                "key_label": "gateway-ca",
                "pin_file": str(hsm.pin_file),
                "common_name": "E2E HSM CA",
            }
        },
        "profiles": {"default": {"ca": "hsm"}},
    }


@asynccontextmanager
async def _gateway(tmp: Path) -> AsyncIterator[tuple[str, Path, int]]:
    dns = DnsResponder()
    await dns.start()
    dns.zone.add(DOMAIN, "A", "127.0.0.1")
    http01, https = free_port(), free_port()
    doc = _document(tmp, dns.port, http01, https)
    path = tmp / "gateway.toml"
    path.write_text(to_toml(doc))
    # `ca init` as an operator runs it: the key is made in the token, the CA certificate on disk.
    assert (
        await asyncio.to_thread(cli.main, ["--config", str(path), "ca", "init", "--ca", "hsm"]) == 0
    )
    settings = config.load(path)
    cert = tls.ensure_self_signed(settings.server)
    connectors = build_connectors(settings)
    app = create_app(settings, connectors=connectors)
    if not any(
        r.resource is not None and r.resource.canonical == "/pkix/{ca}/crl"
        for r in app.router.routes()
    ):
        app[PKIX_SERVICE] = PkixService(connectors)
        add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(
        runner, "127.0.0.1", https, ssl_context=tls.server_context(settings.server)
    ).start()
    pkix = await pkix_listener.start(app, settings.server)  # CRL/OCSP over plain HTTP
    try:
        yield f"https://127.0.0.1:{https}/acme/directory", cert, http01
    finally:
        if pkix is not None:
            await pkix.cleanup()
        await runner.cleanup()
        await dns.close()


async def _lego(args: list[str], cert: Path) -> tuple[int, str]:
    return await run(["lego", *args], {"LEGO_CA_CERTIFICATES": str(cert)}, CLIENT_TIMEOUT)


async def _ocsp_status(
    leaf: x509.Certificate, issuer: x509.Certificate, tls_cert: Path
) -> ocsp.OCSPCertStatus:
    (aia,) = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert aia.access_method == AuthorityInformationAccessOID.OCSP
    der = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(leaf, issuer, hashes.SHA1())
        .build()
        .public_bytes(Encoding.DER)
    )
    ctx = ssl.create_default_context(cafile=str(tls_cert))
    headers = {"Content-Type": "application/ocsp-request"}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            aia.access_location.value, data=der, headers=headers, ssl=ctx
        ) as resp:
            assert resp.status == 200
            answer = ocsp.load_der_ocsp_response(await resp.read())
    ca_key = issuer.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)  # the default CA key type, ec-p256
    ca_key.verify(answer.signature, answer.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
    return answer.certificate_status


async def test_lego_obtains_and_revokes_through_the_hsm_ca(tmp_path: Path) -> None:
    require_tool("lego", "softhsm2-util", SOFTHSM_LIBRARY)
    async with _gateway(tmp_path) as (url, tls_cert, http01):
        common = [
            "--server",
            url,
            "--email",
            "ops@example.net",
            "--accept-tos",
            "--domains",
            DOMAIN,
        ]
        common += ["--path", str(tmp_path / "lego")]
        code, out = await _lego(
            [*common, "--http", "--http.port", f"127.0.0.1:{http01}", "run"], tls_cert
        )
        assert code == 0, out
        certs = x509.load_pem_x509_certificates(
            (tmp_path / "lego" / "certificates" / f"{DOMAIN}.crt").read_bytes()
        )
        leaf, issuer = certs[0], certs[1]
        assert issuer.subject.rfc4514_string() == "CN=E2E HSM CA"
        leaf.verify_directly_issued_by(issuer)
        assert await _ocsp_status(leaf, issuer, tls_cert) == ocsp.OCSPCertStatus.GOOD
        code, out = await _lego([*common, "revoke", "--reason", "1"], tls_cert)
        assert code == 0, out
        assert await _ocsp_status(leaf, issuer, tls_cert) == ocsp.OCSPCertStatus.REVOKED
        crl = await fetch_crl(leaf, tls_cert)
        assert crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
        entry = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
        assert entry is not None
