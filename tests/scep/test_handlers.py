"""SCEP over HTTP: capabilities, CA certificates, enrollment, polling, renewal, GetCert."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from gateway.scep import message as m
from tests.scep.client import DER, scep_csr
from tests.scep.support import PASSWORD, ScepGateway


async def test_capabilities_offer_aes_sha256_post_and_renewal(gw: ScepGateway) -> None:
    status, ctype, body = await gw.get("/routers/pkiclient.exe?operation=GetCACaps")
    caps = body.decode().split()
    assert status == 200 and ctype.startswith("text/plain")
    assert {"AES", "SHA-256", "POSTPKIOperation", "Renewal", "SCEPStandard"} <= set(caps)
    assert "DES3" not in caps and "DES" not in caps and "MD5" not in caps
    _, _, legacy = await gw.get("/legacy?operation=GetCACaps")
    assert "DES3" in legacy.decode().split() and "Renewal" not in legacy.decode().split()


async def test_ca_cert_serves_the_ra_and_the_ca(gw: ScepGateway) -> None:
    status, ctype, body = await gw.get("/pkiclient.exe?operation=GetCACert")
    assert status == 200 and ctype == "application/x-x509-ca-ra-cert"
    ders = [c.public_bytes(DER) for c in pkcs7.load_der_pkcs7_certificates(body)]
    ca_ders = await gw.core.est.ca_certs("routers")
    assert sorted(ders) == sorted([gw.ra_cert, *ca_ders])
    ra = x509.load_der_x509_certificate(gw.ra_cert)
    usage = ra.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment
    assert ra.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0


async def test_enroll_with_the_label_password(gw: ScepGateway) -> None:
    device = gw.device()
    key = device.key
    rep = await device.enroll(scep_csr(key, "r1.routers.example.net", PASSWORD), "tx-1")
    assert rep.status == m.SUCCESS, rep.fail_text
    (cert,) = rep.certs
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["r1.routers.example.net"]


async def test_unknown_label_and_operation_are_one_line_4xx(gw: ScepGateway) -> None:
    status, _, body = await gw.get("/nosuch/pkiclient.exe?operation=GetCACaps")
    assert status == 404 and b"unknown SCEP label 'nosuch'" in body
    status, _, body = await gw.get("/routers/pkiclient.exe?operation=Nope")
    assert status == 400 and b"unknown SCEP operation" in body
    device = gw.device()
    assert (await device.send(b"\x30\x03garbage"))[0] == 400
