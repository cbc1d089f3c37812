"""SCEP over HTTP: capabilities, CA certificates, enrollment, polling, renewal, GetCert."""

from __future__ import annotations

from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from gateway.scep import message as m
from tests.scep.client import DER, ScepClient, issuer_and_serial, rsa_key, scep_csr
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


async def test_pending_until_approved_then_cert_poll(gw: ScepGateway) -> None:
    device = gw.device("held")
    rep = await device.enroll(scep_csr(device.key, "h1.example.net", PASSWORD), "tx-held")
    assert rep.status == m.PENDING and not rep.certs
    assert (await device.poll("tx-held")).status == m.PENDING
    (held,) = await gw.core.approvals.pending()
    await gw.core.approvals.approve(held.id, "officer")
    done = await device.poll("tx-held")
    assert done.status == m.SUCCESS and done.certs[0].subject.rfc4514_string() == \
        "CN=h1.example.net"
    stranger = gw.device("held")  # the transaction is bound to the key that began it
    assert (await stranger.poll("tx-held")).fail_info == m.BAD_CERT_ID


async def test_renewal_signed_by_the_issued_certificate(gw: ScepGateway) -> None:
    device = gw.device()
    first = await device.enroll(scep_csr(device.key, "r3.routers.example.net", PASSWORD),
                                "tx-r3")
    old = first.certs[0]
    renewing = ScepClient(device.url, device.ra_cert, device.key, old.public_bytes(DER))
    new_key = rsa_key()
    rep = await renewing.enroll(scep_csr(new_key, "r3.routers.example.net", None), "tx-r3b",
                                message_type=m.RENEWAL_REQ)
    assert rep.status == m.SUCCESS, rep.fail_text
    assert rep.certs[0].public_key().public_numbers() == new_key.public_key().public_numbers()
    other = await renewing.enroll(scep_csr(rsa_key(), "r4.routers.example.net", None),
                                  "tx-r3c", message_type=m.RENEWAL_REQ)
    assert other.fail_info == m.BAD_REQUEST and "subject differs" in other.fail_text
    self_signed_renewal = await gw.device().enroll(
        scep_csr(rsa_key(), "r3.routers.example.net", None), "tx-r3d",
        message_type=m.RENEWAL_REQ)
    assert self_signed_renewal.fail_info == m.BAD_REQUEST
    legacy = gw.device("legacy")  # renewal = false there
    refused = await legacy.enroll(scep_csr(legacy.key, "x.example.net", None), "tx-l",
                                  message_type=m.RENEWAL_REQ)
    assert "does not offer renewal" in refused.fail_text


async def test_get_cert_for_the_key_holder_only(gw: ScepGateway) -> None:
    device = gw.device()
    rep = await device.enroll(scep_csr(device.key, "r10.routers.example.net", PASSWORD),
                              "tx-r10")
    cert = rep.certs[0]
    holder = ScepClient(device.url, device.ra_cert, device.key, cert.public_bytes(DER))
    got = await holder.send_inner(m.GET_CERT, issuer_and_serial(cert), "tx-get")
    assert got.status == m.SUCCESS and got.certs == [cert]
    stranger = await gw.device().send_inner(m.GET_CERT, issuer_and_serial(cert), "tx-get2")
    assert stranger.fail_info == m.BAD_CERT_ID


async def test_get_crl_of_the_label_ca(gw: ScepGateway) -> None:
    device = gw.device()
    rep = await device.enroll(scep_csr(device.key, "r11.routers.example.net", PASSWORD),
                              "tx-r11")
    crl_rep = await device.send_inner(m.GET_CRL, issuer_and_serial(rep.certs[0]), "tx-crl")
    assert crl_rep.status == m.SUCCESS and not crl_rep.certs
    (crl,) = cms.ContentInfo.load(crl_rep.inner)["content"]["crls"]
    assert crl.chosen.issuer.dump() == rep.certs[0].issuer.public_bytes()
