"""serverkeygen: multipart/mixed, PKCS#8 key part first, then the certificate; key never kept."""

from __future__ import annotations

import base64
import email
import email.policy
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from tests.est.support import ALICE, Gateway, b64, ec_key, make_csr, request


def _parts(content_type: str, body: bytes) -> list[tuple[str, str, bytes]]:
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.compat32)
    assert message.is_multipart()
    out = []
    for part in message.get_payload():
        raw = part.get_payload(decode=False)
        out.append((part["Content-Type"], part["Content-Transfer-Encoding"],
                    base64.b64decode("".join(raw.split()))))
    return out


async def test_serverkeygen_returns_key_then_certificate(gw: Gateway) -> None:
    template = make_csr(ec_key(), sans=("router01.example.net",))
    status, headers, body = await request(gw, "POST", "/basic/serverkeygen", b64(template),
                                          ALICE)
    assert status == 200, body
    assert headers["Content-Type"].startswith("multipart/mixed; boundary=")
    assert int(headers["Content-Length"]) == len(body)
    (key_type, key_cte, key_der), (cert_type, cert_cte, p7) = _parts(headers["Content-Type"], body)
    assert (key_type, key_cte) == ("application/pkcs8", "base64")
    assert cert_type == "application/pkcs7-mime; smime-type=certs-only" and cert_cte == "base64"
    key = serialization.load_der_private_key(key_der, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    (leaf,) = pkcs7.load_der_pkcs7_certificates(p7)
    assert leaf.public_key() == key.public_key()
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
        .get_values_for_type(x509.DNSName) == ["router01.example.net"]


async def test_serverkeygen_follows_rsa_template_and_never_stores_the_key(
        gw: Gateway, tmp_path: Path) -> None:
    template = make_csr(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    status, headers, body = await request(gw, "POST", "/basic/serverkeygen", b64(template),
                                          ALICE)
    assert status == 200, body
    (_, _, key_der), _ = _parts(headers["Content-Type"], body)
    key = serialization.load_der_private_key(key_der, None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    secret = key.private_numbers().d.to_bytes(256, "big")[-32:]
    for path in (tmp_path / "gw").rglob("*"):
        if path.is_file():
            assert key_der not in path.read_bytes() and secret not in path.read_bytes(), path


async def test_serverkeygen_needs_credentials(gw: Gateway) -> None:
    status, headers, _ = await request(gw, "POST", "/basic/serverkeygen",
                                       b64(make_csr(ec_key())))
    assert status == 401 and "WWW-Authenticate" in headers
