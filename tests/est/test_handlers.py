"""EST endpoints over HTTPS: every operation, every auth mode, and refusals of bad input."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.est.pkcs7 import OID_CHALLENGE_PASSWORD, parse_csr_attributes
from tests.est.support import (
    ALICE,
    Gateway,
    Manufacturer,
    b64,
    certs_of,
    ec_key,
    make_csr,
    request,
)

CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only"


def _one_line(status: int, body: bytes) -> str:
    text = body.decode()
    assert text.endswith("\r\n") and "\n" not in text[:-2], text
    assert 400 <= status < 500, (status, text)
    return text.strip()


@pytest.mark.parametrize("path", ["/cacerts", "/basic/cacerts", "/open/cacerts"])
async def test_cacerts_is_anonymous_pkcs7(gw: Gateway, path: str) -> None:
    status, headers, body = await request(gw, "GET", path)
    assert status == 200
    assert headers["Content-Type"] == "application/pkcs7-mime"
    assert headers["Content-Transfer-Encoding"] == "base64"
    assert int(headers["Content-Length"]) == len(body)
    assert "Server" not in headers and "Transfer-Encoding" not in headers
    # RFC 7030 §4.1.3: the issuing CA and the root to trust (a PKCS#7 SET: any order)
    [root], [issuing] = ([c for c in certs_of(body) if (c.issuer == c.subject) == is_root]
                         for is_root in (True, False))
    for ca in (issuing, root):
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    issuing.verify_directly_issued_by(root)
    assert max(len(line) for line in body.split(b"\r\n")) == 64


async def test_csrattrs_lists_key_signature_san_and_pop(gw: Gateway) -> None:
    status, headers, body = await request(gw, "GET", "/pop/csrattrs")
    assert status == 200 and headers["Content-Type"] == "application/csrattrs"
    attrs = parse_csr_attributes(base64.b64decode(body))
    assert attrs[0] == OID_CHALLENGE_PASSWORD
    assert "2.5.29.17" in attrs and "1.2.840.113549.1.1.1" in attrs  # SAN; RSA first in profile
    _, _, plain = await request(gw, "GET", "/csrattrs")
    assert OID_CHALLENGE_PASSWORD not in parse_csr_attributes(base64.b64decode(plain))


async def test_basic_enroll_issues_client_auth_certificate(gw: Gateway) -> None:
    csr = make_csr(ec_key(), sans=("router01.example.net", "mgmt.example.net"))
    status, headers, body = await request(gw, "POST", "/basic/simpleenroll", b64(csr), ALICE)
    assert status == 200, body
    assert headers["Content-Type"] == CERTS_ONLY
    (leaf,) = certs_of(body)
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"router01.example.net",
                                                           "mgmt.example.net"}


async def test_same_csr_again_answers_the_same_certificate(gw: Gateway) -> None:
    csr = b64(make_csr(ec_key()))
    _, _, first = await request(gw, "POST", "/basic/simpleenroll", csr, ALICE)
    _, _, again = await request(gw, "POST", "/basic/simpleenroll", csr, ALICE)
    assert certs_of(first)[0] == certs_of(again)[0]


async def test_missing_credentials_get_basic_challenge(gw: Gateway) -> None:
    for path in ("/basic/simpleenroll", "/simpleenroll", "/both/simpleenroll"):
        status, headers, body = await request(gw, "POST", path, b64(make_csr(ec_key())))
        assert status == 401, path
        assert headers["WWW-Authenticate"] == 'Basic realm="acme-gateway EST"'
        assert body.endswith(b"\r\n")


@pytest.mark.parametrize("creds,status", [(("alice", "wrong"), 401), (("nobody", "x"), 401),
                                          (("bob", "bobs pw"), 403)])
async def test_wrong_or_unlisted_user_is_refused(gw: Gateway, creds: tuple[str, str],
                                                 status: int) -> None:
    got, _, body = await request(gw, "POST", "/basic/simpleenroll", b64(make_csr(ec_key())),
                                 creds)
    assert got == status
    _one_line(got, body)


async def test_certificate_label_takes_manufacturer_certificate(
        gw: Gateway, manufacturer: Manufacturer) -> None:
    device = manufacturer.device()
    status, _, body = await request(gw, "POST", "/certonly/simpleenroll",
                                    b64(make_csr(ec_key())), cert=device)
    assert status == 200, body
    status, _, body = await request(gw, "POST", "/certonly/simpleenroll",
                                    b64(make_csr(ec_key())))
    assert status == 403 and "client certificate" in _one_line(status, body)


async def test_label_refuses_anchor_of_another_label(gw: Gateway,
                                                     manufacturer: Manufacturer) -> None:
    # "default" trusts only the gateway's CA; the manufacturer CA belongs to other labels.
    status, _, body = await request(gw, "POST", "/simpleenroll", b64(make_csr(ec_key())),
                                    cert=manufacturer.device())
    assert status == 403
    assert "not issued by a CA that label 'default' trusts" in _one_line(status, body)


async def test_both_needs_certificate_and_password(gw: Gateway,
                                                   manufacturer: Manufacturer) -> None:
    csr = b64(make_csr(ec_key()))
    status, _, _ = await request(gw, "POST", "/both/simpleenroll", csr, ALICE)
    assert status == 403
    status, _, body = await request(gw, "POST", "/both/simpleenroll", csr, ALICE,
                                    cert=manufacturer.device())
    assert status == 200, body


async def test_label_with_auth_none_does_not_enroll(gw: Gateway) -> None:
    status, _, body = await request(gw, "POST", "/open/simpleenroll", b64(make_csr(ec_key())))
    assert status == 403 and "auth = none" in _one_line(status, body)


async def test_unknown_label_and_fullcmc(gw: Gateway) -> None:
    status, _, body = await request(gw, "GET", "/nosuch/cacerts")
    assert status == 404 and "unknown EST label 'nosuch'" in _one_line(status, body)
    status, headers, body = await request(gw, "POST", "/fullcmc", b"x", ALICE)
    assert status == 501 and headers["Content-Type"].startswith("text/plain")
    assert b"fullcmc is not implemented" in body


@pytest.mark.parametrize("body,reason", [
    (b"", "empty"),
    (b"%%%% not base64 %%%%", "neither base64 nor DER"),
    (b64(b"\x30\x03\x02\x01\x01"), "not a valid DER PKCS#10"),
    (b64(b"\x30\x00"), "not a valid DER PKCS#10"),
])
async def test_garbage_bodies_are_one_line_400(gw: Gateway, body: bytes, reason: str) -> None:
    status, _, answer = await request(gw, "POST", "/basic/simpleenroll", body, ALICE)
    assert status == 400
    assert reason in _one_line(status, answer)


async def test_bad_signature_forbidden_key_and_name(gw: Gateway) -> None:
    der = bytearray(make_csr(ec_key()))
    der[-5] ^= 0x55  # inside the signature
    status, _, body = await request(gw, "POST", "/basic/simpleenroll", b64(bytes(der)), ALICE)
    assert status == 400 and "signature" in _one_line(status, body)
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    status, _, body = await request(gw, "POST", "/basic/simpleenroll", b64(make_csr(small)),
                                    ALICE)
    assert status == 400 and "too small" in _one_line(status, body)
    status, _, body = await request(gw, "POST", "/basic/simpleenroll",
                                    b64(make_csr(ec_key(), cn="www.evil.org")), ALICE)
    assert status == 400
    assert "matches none of the allowed patterns" in _one_line(status, body)


async def test_refusals_store_nothing(gw: Gateway) -> None:
    csr = make_csr(ec_key(), cn="www.evil.org")
    await request(gw, "POST", "/basic/simpleenroll", b64(csr), ALICE)
    from gateway.core.est import order_id_for

    assert await gw.core.est.store.get_order(order_id_for("est:user:alice", csr, "")) is None


@pytest.mark.parametrize("encode", [
    lambda d: base64.b64encode(d),                                   # one line, no CTE
    lambda d: b"  " + b"\r\n ".join(base64.b64encode(d)[i:i + 10]
                                     for i in range(0, 400, 10)) + b"\t\r\n",
    lambda d: (b"-----BEGIN CERTIFICATE REQUEST-----\n" + b64(d)
               + b"-----END CERTIFICATE REQUEST-----\n"),
    lambda d: d,                                                     # raw DER
    lambda d: b64(d) + b"\0\0garbage-after\xff",                    # trailing bytes
])
async def test_lenient_request_bodies(gw: Gateway, encode: object) -> None:
    der = make_csr(ec_key())
    body = encode(der)  # type: ignore[operator]
    status, _, answer = await request(gw, "POST", "/basic/simpleenroll", body, ALICE,
                                      headers={"Content-Transfer-Encoding": "binary"})
    assert status == 200, answer


async def test_one_line_base64_by_label_and_by_user_agent(gw: Gateway) -> None:
    csr = b64(make_csr(ec_key()))
    _, _, body = await request(gw, "POST", "/oneline/simpleenroll", csr, ALICE)
    assert body.count(b"\r\n") == 1 and body.endswith(b"\r\n")
    _, _, body = await request(gw, "GET", "/cacerts",
                               headers={"User-Agent": "strongSwan 5.9.8"})
    assert body.count(b"\r\n") == 1
    _, _, body = await request(gw, "GET", "/cacerts", headers={"User-Agent": "curl/7.88.1"})
    assert body.count(b"\r\n") > 1


async def test_plain_http_is_refused_for_enrollment(tmp_path: Path) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from gateway import config
    from gateway.app import create_app
    from tests.est.support import est_section, settings_doc

    doc = settings_doc(tmp_path, est_section(Manufacturer(tmp_path).ca_file))
    async with TestClient(TestServer(create_app(config.parse(doc, "t")))) as client:
        resp = await client.post("/.well-known/est/basic/simpleenroll", data=b"x",
                                 headers={"Authorization": "Basic YWxpY2U6eA=="})
        assert resp.status == 403 and "HTTPS" in await resp.text()
        assert (await client.get("/.well-known/est/cacerts")).status == 200


async def test_unknown_path_and_wrong_method(gw: Gateway) -> None:
    status, _, body = await request(gw, "GET", "/a/b/c")
    assert status == 404 and "simpleenroll" in body.decode()
    status, headers, body = await request(gw, "GET", "/basic/simpleenroll")
    assert status == 405 and headers["Allow"] == "POST"
    assert body.decode().strip() == "this EST operation accepts POST only"
