"""The signed pkiMessage of SCEP (RFC 8894 §3.2): read and verify requests, build CertRep.

A pkiMessage is a CMS SignedData whose signed attributes carry the SCEP fields
(messageType, transactionID, senderNonce, ...) and whose content is an
EnvelopedData (:mod:`gateway.scep.envelope`). Reading is split in two steps so
that a message whose signature fails can still be answered with a signed
``FAILURE`` / ``badMessageCheck`` naming its transaction: :func:`read_message`
takes the fields (raising :class:`Unreadable` when there are none to answer),
:func:`verify_signature` then checks the signer's signature and digest.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

_SCEP = "2.16.840.1.113733.1.9."
OID_MESSAGE_TYPE = _SCEP + "2"
OID_PKI_STATUS = _SCEP + "3"
OID_FAIL_INFO = _SCEP + "4"
OID_SENDER_NONCE = _SCEP + "5"
OID_RECIPIENT_NONCE = _SCEP + "6"
OID_TRANSACTION_ID = _SCEP + "7"
OID_FAIL_INFO_TEXT = "1.3.6.1.5.5.7.24.1"

CERT_REP, RENEWAL_REQ, PKCS_REQ, CERT_POLL, GET_CERT, GET_CRL = "3", "17", "19", "20", "21", "22"
SUCCESS, FAILURE, PENDING = "0", "2", "3"
# failInfo values (RFC 8894 §3.2.1.4)
BAD_ALG, BAD_MESSAGE_CHECK, BAD_REQUEST, BAD_TIME, BAD_CERT_ID = "0", "1", "2", "3", "4"

# Digests a signer may use, by asn1crypto name: (hash, legacy only)
DIGESTS: dict[str, tuple[type[hashes.HashAlgorithm], bool]] = {
    "sha256": (hashes.SHA256, False), "sha384": (hashes.SHA384, False),
    "sha512": (hashes.SHA512, False), "sha224": (hashes.SHA224, False),
    "sha1": (hashes.SHA1, False), "md5": (hashes.MD5, True)}
MAX_TRANSACTION_ID = 128


class Unreadable(Exception):
    """Not a pkiMessage this gateway can answer: no signer, no transaction or nonce."""


class BadMessage(Exception):
    """A readable pkiMessage refused before any core call; ``fail_info`` says why."""

    def __init__(self, fail_info: str, detail: str) -> None:
        super().__init__(detail)
        self.fail_info = fail_info
        self.detail = detail


@dataclass(frozen=True)
class PkiMessage:
    """The SCEP fields of a request, its signer certificate and encrypted content."""

    message_type: str
    transaction_id: str
    sender_nonce: bytes
    signer_der: bytes
    digest: str
    content: bytes  # the EnvelopedData (ContentInfo DER); empty when absent
    signer_info: cms.SignerInfo


def _attributes(signer: cms.SignerInfo) -> dict[str, bytes]:
    """Signed attributes by dotted OID: the DER of each one's single value."""
    out: dict[str, bytes] = {}
    for attr in signer["signed_attrs"]:
        values = attr["values"]
        if len(values) != 1 or attr["type"].dotted in out:
            raise Unreadable(f"signed attribute {attr['type'].dotted} must have one value")
        out[attr["type"].dotted] = values[0].dump()
    return out


def _printable(attrs: dict[str, bytes], oid: str, what: str) -> str:
    if oid not in attrs:
        raise Unreadable(f"the pkiMessage has no {what}")
    value = core.Asn1Value.load(attrs[oid])
    if not isinstance(value, core.PrintableString):
        raise Unreadable(f"the {what} is not a PrintableString")
    return str(value.native)


def _signer_certificate(signed: cms.SignedData, signer: cms.SignerInfo,
                        known: bytes | None) -> bytes:
    sid = signer["sid"]
    if sid.name != "issuer_and_serial_number":
        raise Unreadable("the signer must be named by issuer and serial number")
    wanted = sid.chosen
    carried = [c.chosen for c in signed["certificates"] or [] if c.name == "certificate"]
    if known is not None:
        carried.append(asn1_x509.Certificate.load(known))
    for cert in carried:
        if cert.serial_number == wanted["serial_number"].native and \
                cert.issuer == wanted["issuer"]:
            return bytes(cert.dump())
    raise Unreadable("the pkiMessage does not carry its signer's certificate")


def read_message(der: bytes, known_signer: bytes | None = None) -> PkiMessage:
    """The fields of a pkiMessage, not yet verified; :class:`Unreadable` if it has none.

    ``known_signer`` is a certificate the reader already holds (a client reading a
    CertRep holds the RA's), for a message that does not carry its signer's.
    """
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise Unreadable("a pkiMessage is a CMS SignedData")
        signed = info["content"]
        if len(signed["signer_infos"]) != 1:
            raise Unreadable("a pkiMessage has exactly one signer")
        signer = signed["signer_infos"][0]
        attrs = _attributes(signer)
        nonce = core.Asn1Value.load(attrs.get(OID_SENDER_NONCE, b"\x04\x00"))
        content = signed["encap_content_info"]["content"]
        message = PkiMessage(
            message_type=_printable(attrs, OID_MESSAGE_TYPE, "messageType"),
            transaction_id=_printable(attrs, OID_TRANSACTION_ID, "transactionID"),
            sender_nonce=nonce.native if isinstance(nonce, core.OctetString) else b"",
            signer_der=_signer_certificate(signed, signer, known_signer),
            digest=signer["digest_algorithm"]["algorithm"].native,
            content=b"" if content.native is None else _content_bytes(content),
            signer_info=signer)
    except Unreadable:
        raise
    except Exception as exc:  # asn1crypto raises many types for garbage
        raise Unreadable(f"the body is not a pkiMessage ({type(exc).__name__})") from None
    _check_fields(message)
    return message


def _content_bytes(content: core.Asn1Value) -> bytes:
    # The content of type data is an OCTET STRING holding the EnvelopedData; its octets
    # (joined, if a client sent them in BER chunks) are what messageDigest covers.
    if isinstance(content, core.OctetString):
        return bytes(content.native)
    return bytes(content.dump())


def _check_fields(message: PkiMessage) -> None:
    if not (0 < len(message.transaction_id) <= MAX_TRANSACTION_ID):
        raise Unreadable(f"the transactionID must be 1 to {MAX_TRANSACTION_ID} characters")
    if len(message.sender_nonce) != 16:
        raise Unreadable("the senderNonce must be 16 bytes")


def verify_signature(message: PkiMessage, legacy: bool) -> None:
    """Check the digest and signature of the signed attributes; raise :class:`BadMessage`."""
    digest = DIGESTS.get(message.digest)
    if digest is None or (digest[1] and not legacy):
        raise BadMessage(BAD_ALG, f"digest {message.digest} is not offered; use SHA-256")
    signer = message.signer_info
    attrs = _attributes(signer)
    expected = core.Asn1Value.load(attrs.get("1.2.840.113549.1.9.4", b"\x04\x00")).native
    hasher = hashlib.new(message.digest)
    hasher.update(message.content)
    if expected != hasher.digest():
        raise BadMessage(BAD_MESSAGE_CHECK, "the messageDigest does not match the content")
    signed_attrs = b"\x31" + signer["signed_attrs"].dump()[1:]  # [0] IMPLICIT → SET OF
    public = load_der_public_key(asn1_x509.Certificate.load(message.signer_der).public_key.dump())
    if not isinstance(public, rsa.RSAPublicKey):
        raise BadMessage(BAD_ALG, "SCEP signers must have RSA keys")
    algo = signer["signature_algorithm"]
    pad: padding.AsymmetricPadding = padding.PKCS1v15()
    if algo.signature_algo == "rsassa_pss":
        pad = padding.PSS(padding.MGF1(digest[0]()), padding.PSS.AUTO)
    try:
        public.verify(signer["signature"].native, signed_attrs, pad, digest[0]())
    except InvalidSignature:
        raise BadMessage(BAD_MESSAGE_CHECK, "the pkiMessage signature does not verify "
                         "with its signer certificate") from None


@dataclass(frozen=True)
class Reply:
    """What a CertRep says: status, failInfo (and its text) or the enveloped content."""

    status: str
    fail_info: str | None = None
    fail_text: str = ""
    content: bytes = b""  # EnvelopedData DER, on SUCCESS


def scep_attribute(oid: str, value: core.Asn1Value) -> cms.CMSAttribute:
    """One signed attribute with a single value."""
    return cms.CMSAttribute({"type": oid, "values": [value]})


def _reply_attributes(request: PkiMessage, reply: Reply) -> list[cms.CMSAttribute]:
    attrs = [
        scep_attribute(OID_MESSAGE_TYPE, core.PrintableString(CERT_REP)),
        scep_attribute(OID_PKI_STATUS, core.PrintableString(reply.status)),
        scep_attribute(OID_TRANSACTION_ID, core.PrintableString(request.transaction_id)),
        scep_attribute(OID_SENDER_NONCE, core.OctetString(os.urandom(16))),
        scep_attribute(OID_RECIPIENT_NONCE, core.OctetString(request.sender_nonce))]
    if reply.fail_info is not None:
        attrs.append(scep_attribute(OID_FAIL_INFO, core.PrintableString(reply.fail_info)))
        if reply.fail_text:
            attrs.append(scep_attribute(OID_FAIL_INFO_TEXT,
                                        core.UTF8String(reply.fail_text[:500])))
    return attrs


def cert_rep(request: PkiMessage, reply: Reply, ra_key: rsa.RSAPrivateKey,
             ra_cert_der: bytes) -> bytes:
    """A CertRep pkiMessage answering ``request``, signed by the RA."""
    digest = request.digest if request.digest in DIGESTS else "sha256"
    # The RA certificate is left out: clients hold it from GetCACert, and strongSwan
    # trusts a self-signed, non-CA certificate only as the very object it loaded.
    return signed_message(reply.content, _reply_attributes(request, reply), ra_key,
                          ra_cert_der, digest, embed_certificate=True)


def signed_message(content: bytes, scep_attrs: list[cms.CMSAttribute], key: rsa.RSAPrivateKey,
                   cert_der: bytes, digest: str = "sha256",
                   embed_certificate: bool = True) -> bytes:
    """A SignedData of ``content`` (may be empty) with these attributes, signed by ``key``.

    The RA signs its CertReps with it; tests and tools sign requests with it.
    """
    hasher = hashlib.new(digest)
    hasher.update(content)
    signed_attrs = cms.CMSAttributes([
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "message_digest", "values": [hasher.digest()]}),
        *scep_attrs])
    signature = key.sign(signed_attrs.dump(), padding.PKCS1v15(), DIGESTS[digest][0]())
    cert = asn1_x509.Certificate.load(cert_der)
    signer = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier(name="issuer_and_serial_number", value={
            "issuer": cert.issuer, "serial_number": cert.serial_number}),
        "digest_algorithm": {"algorithm": digest},
        "signed_attrs": signed_attrs,
        "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
        "signature": signature})
    encap: dict[str, object] = {"content_type": "data"}
    if content:
        encap["content"] = content
    signed = cms.SignedData({
        "version": "v1", "digest_algorithms": [{"algorithm": digest}],
        "encap_content_info": encap, "signer_infos": [signer],
        **({"certificates": [cert]} if embed_certificate else {})})
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())
