"""A small SCEP client for tests: builds pkiMessages as devices do and reads the CertReps."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
from asn1crypto import cms, core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from gateway.scep import message as m
from gateway.scep.envelope import open_envelope, seal

DER = serialization.Encoding.DER


def rsa_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA key (SCEP clients enroll RSA)."""
    return rsa.generate_private_key(65537, 2048)


def self_signed(key: rsa.RSAPrivateKey, cn: str = "device") -> bytes:
    """The throw-away certificate a device signs its first request with (RFC 8894 §2.3)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()).public_bytes(DER))


def scep_csr(key: rsa.RSAPrivateKey, cn: str, password: str | None,
             sans: tuple[str, ...] = ()) -> bytes:
    """A DER CSR with a challengePassword and DNS SANs (the CN when none are given)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])).add_extension(
        x509.SubjectAlternativeName([x509.DNSName(n) for n in (sans or (cn,))]), False)
    if password is not None:
        builder = builder.add_attribute(x509.oid.AttributeOID.CHALLENGE_PASSWORD,
                                        password.encode())
    return builder.sign(key, hashes.SHA256()).public_bytes(DER)


@dataclass(frozen=True)
class CertRep:
    """A decoded CertRep: status, failInfo and text, the certificates on SUCCESS."""

    status: str
    fail_info: str | None
    fail_text: str
    certs: list[x509.Certificate]
    transaction_id: str
    recipient_nonce: bytes
    inner: bytes = b""  # the decrypted degenerate SignedData, on SUCCESS


def _attr(signer: cms.SignerInfo, oid: str) -> object:
    for attr in signer["signed_attrs"]:
        if attr["type"].dotted == oid:
            return core.Asn1Value.load(attr["values"][0].dump()).native
    return None


@dataclass
class ScepClient:
    """One device: its key and signing certificate, talking to ``url`` (…/pkiclient.exe)."""

    url: str
    ra_cert: bytes
    key: rsa.RSAPrivateKey
    signer: bytes

    def request(self, message_type: str, inner: bytes, transaction_id: str,
                cipher: str = "aes256_cbc", digest: str = "sha256") -> tuple[bytes, bytes]:
        """A signed, enveloped pkiMessage (DER) and its senderNonce."""
        nonce = os.urandom(16)
        attrs = [m.scep_attribute(m.OID_MESSAGE_TYPE, core.PrintableString(message_type)),
                 m.scep_attribute(m.OID_TRANSACTION_ID, core.PrintableString(transaction_id)),
                 m.scep_attribute(m.OID_SENDER_NONCE, core.OctetString(nonce))]
        content = seal(inner, self.ra_cert, cipher)
        return m.signed_message(content, attrs, self.key, self.signer, digest), nonce

    async def send(self, der: bytes) -> tuple[int, bytes]:
        """POST a pkiMessage; the status and body."""
        async with aiohttp.ClientSession() as session, session.post(
                self.url + "?operation=PKIOperation", data=der,
                headers={"Content-Type": "application/x-pki-message"}) as resp:
            return resp.status, await resp.read()

    def read(self, body: bytes) -> CertRep:
        """Verify and decode a CertRep addressed to this device."""
        rep = m.read_message(body, known_signer=self.ra_cert)
        m.verify_signature(rep, legacy=False)
        assert rep.signer_der == self.ra_cert
        certs: list[x509.Certificate] = []
        inner = b""
        if rep.content:
            inner, _ = open_envelope(rep.content, self.key, legacy=True)
            signed = cms.ContentInfo.load(inner)["content"]
            if signed["certificates"]:
                certs = pkcs7.load_der_pkcs7_certificates(inner)
        signer = rep.signer_info
        text = _attr(signer, m.OID_FAIL_INFO_TEXT)
        return CertRep(str(_attr(signer, m.OID_PKI_STATUS)),
                       _attr(signer, m.OID_FAIL_INFO),  # type: ignore[arg-type]
                       str(text or ""), certs, rep.transaction_id,
                       _attr(signer, m.OID_RECIPIENT_NONCE), inner)  # type: ignore[arg-type]

    async def enroll(self, csr: bytes, transaction_id: str, message_type: str = m.PKCS_REQ,
                     cipher: str = "aes256_cbc") -> CertRep:
        """Send a PKCSReq (or RenewalReq) and read the answer; the nonce must come back."""
        der, nonce = self.request(message_type, csr, transaction_id, cipher)
        status, body = await self.send(der)
        assert status == 200, body
        rep = self.read(body)
        assert rep.recipient_nonce == nonce and rep.transaction_id == transaction_id
        return rep

    async def send_inner(self, message_type: str, inner: bytes,
                         transaction_id: str) -> CertRep:
        """Send any request type with this inner content and read the answer."""
        der, _ = self.request(message_type, inner, transaction_id)
        status, body = await self.send(der)
        assert status == 200, body
        return self.read(body)

    async def poll(self, transaction_id: str) -> CertRep:
        """CertPoll (GetCertInitial) for a pending transaction."""
        cert = x509.load_der_x509_certificate(self.signer)
        inner = cms.IssuerAndSerialNumber({  # issuer and subject: two Names in a SEQUENCE
            "issuer": cms.Name.load(cert.issuer.public_bytes()),
            "serial_number": 1}).dump()
        der, _ = self.request(m.CERT_POLL, inner, transaction_id)
        status, body = await self.send(der)
        assert status == 200, body
        return self.read(body)


def issuer_and_serial(cert: x509.Certificate) -> bytes:
    """The IssuerAndSerialNumber (DER) of GetCert and GetCRL."""
    return bytes(cms.IssuerAndSerialNumber({
        "issuer": cms.Name.load(cert.issuer.public_bytes()),
        "serial_number": cert.serial_number}).dump())
