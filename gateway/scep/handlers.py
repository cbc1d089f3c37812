"""SCEP operations (RFC 8894 §3.5, §4): GetCACaps, GetCACert and PKIOperation.

``GetCACaps`` and ``GetCACert`` are anonymous. A ``PKIOperation`` is verified
(signature, digest, algorithms the label allows), decrypted, and handed to one
core call; every refusal after that point is a signed CertRep with
``pkiStatus = FAILURE``, a failInfo and a failInfoText naming the cause. A body
that is not a pkiMessage at all has no transaction to answer and gets a
one-line ``400``.
"""

from __future__ import annotations

import base64
import binascii
import logging

from aiohttp import web
from asn1crypto import cms
from asn1crypto import crl as asn1_crl
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from gateway import keys
from gateway.core.est import EnrollResult
from gateway.core.scep import ScepRequest
from gateway.errors import ErrorKind, GatewayError
from gateway.scep import message as m
from gateway.scep.envelope import EnvelopeError, open_envelope, seal
from gateway.scep.ra import RegistrationAuthority
from gateway.scep.settings import ScepLabel, ScepSettings
from gateway.textfront import label_of

log = logging.getLogger("gateway.scep")

SCEP_SETTINGS: web.AppKey[ScepSettings] = web.AppKey("scep_settings", ScepSettings)
SCEP_RA: web.AppKey[RegistrationAuthority] = web.AppKey("scep_ra", RegistrationAuthority)
PKI_MESSAGE = "application/x-pki-message"
# Bodies a device sends are a few KiB; a pkiMessage with a 4096-bit CSR stays under 16 KiB.
MAX_MESSAGE = 64 * 1024


def _label(request: web.Request) -> ScepLabel:
    scep = request.app[SCEP_SETTINGS]
    return label_of(request, scep.labels, scep.default_label, "SCEP")


def capabilities(label: ScepLabel) -> str:
    """The GetCACaps answer: one capability per line (RFC 8894 §3.5.2)."""
    # SHA-384 is also what strongSwan pki 5.9 looks for: it tests the capability list
    # with enum indices instead of bits, so "SCEPStandard", "AES" and "Renewal" count
    # for it only through the bit of SHA-384 (bit 3).
    caps = ["POSTPKIOperation", "SHA-256", "SHA-384", "SHA-512", "SHA-1", "AES",
            "SCEPStandard"]
    if label.renewal:
        caps.append("Renewal")
    if label.legacy_algorithms:
        caps.append("DES3")
    return "\n".join(caps) + "\n"


async def operation(request: web.Request) -> web.StreamResponse:
    """``?operation=...``: dispatch on the operation named in the query (RFC 8894 §4.1)."""
    label = _label(request)
    op = request.query.get("operation", "")
    if op == "GetCACaps":
        return web.Response(text=capabilities(label), content_type="text/plain")
    if op == "GetCACert":
        return await _ca_certs(request, label)
    if op == "PKIOperation":
        return await _pki_operation(request, label)
    raise GatewayError(ErrorKind.MALFORMED, f"unknown SCEP operation {op!r}; the operations "
                       "are GetCACaps, GetCACert and PKIOperation")


async def _ca_certs(request: web.Request, label: ScepLabel) -> web.Response:
    ca_ders = await request.config_dict[keys.CORE].est.ca_certs(label.gate.profile)
    ra = request.app[SCEP_RA]
    certs = [x509.load_der_x509_certificate(d) for d in (ra.cert_der, *ca_ders)]
    body = pkcs7.serialize_certificates(certs, Encoding.DER)
    return web.Response(body=body, content_type="application/x-x509-ca-ra-cert")


async def _message_bytes(request: web.Request) -> bytes:
    if request.method == "POST":
        body = await request.read()
    else:  # GET carries the message base64-encoded in the query (RFC 8894 §4.3)
        body = request.query.get("message", "").encode()
    if body[:1] == b"\x30":
        return body
    try:  # some clients send base64 even over POST
        return base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise GatewayError(ErrorKind.MALFORMED, "the PKIOperation body is neither a DER "
                           "pkiMessage nor its base64") from None


async def _pki_operation(request: web.Request, label: ScepLabel) -> web.Response:
    try:
        message = m.read_message(await _message_bytes(request))
    except m.Unreadable as exc:
        raise GatewayError(ErrorKind.MALFORMED, str(exc)) from None
    reply = await _reply(request, label, message)
    log.info("scep pki operation", extra={"fields": {
        "label": label.name, "message_type": message.message_type,
        "transaction": message.transaction_id, "status": reply.status,
        "fail_info": reply.fail_info, "reason": reply.fail_text}})
    ra = request.app[SCEP_RA]
    return web.Response(body=m.cert_rep(message, reply, ra.key, ra.cert_der),
                        content_type=PKI_MESSAGE)


async def _reply(request: web.Request, label: ScepLabel, message: m.PkiMessage) -> m.Reply:
    try:
        m.verify_signature(message, label.legacy_algorithms)
        return await _dispatch(request, label, message)
    except m.BadMessage as exc:
        await request.config_dict[keys.CORE].est.record_refusal(
            "scep:anonymous", label.gate.profile, f"scep label {label.name!r}: {exc.detail}")
        return m.Reply(m.FAILURE, exc.fail_info, exc.detail)
    except GatewayError as exc:
        if exc.kind is ErrorKind.SERVER_INTERNAL:
            raise
        # Nothing matches the transaction or certificate asked for: badCertId; any other
        # refusal (credentials, policy, the CA's answer): badRequest.
        fail_info = m.BAD_CERT_ID if exc.kind is ErrorKind.NOT_FOUND else m.BAD_REQUEST
        return m.Reply(m.FAILURE, fail_info, exc.detail)


def _open(request: web.Request, label: ScepLabel, message: m.PkiMessage) -> tuple[bytes, str]:
    try:
        return open_envelope(message.content, request.app[SCEP_RA].key, label.legacy_algorithms)
    except EnvelopeError:
        raise m.BadMessage(m.BAD_MESSAGE_CHECK, "the pkiEnvelope cannot be decrypted with "
                           "this RA's key; fetch the RA certificate with GetCACert") from None


async def _dispatch(request: web.Request, label: ScepLabel, message: m.PkiMessage) -> m.Reply:
    core = request.config_dict[keys.CORE]
    inner, cipher = _open(request, label, message)
    kind = message.message_type
    if kind in (m.PKCS_REQ, m.RENEWAL_REQ):
        if kind == m.RENEWAL_REQ and not label.renewal:
            raise m.BadMessage(m.BAD_REQUEST, f"label {label.name!r} does not offer renewal")
        result = await core.scep.enroll(label.gate, ScepRequest(
            message.transaction_id, message.signer_der, inner, renewal=kind == m.RENEWAL_REQ))
        return _enrolled(result, message, cipher)
    if kind == m.CERT_POLL:
        result = await core.scep.poll(label.gate, message.transaction_id, message.signer_der)
        return _enrolled(result, message, cipher)
    if kind == m.GET_CERT:
        der = await core.scep.certificate(_serial(inner), message.signer_der)
        return _success([der], message, cipher)
    if kind == m.GET_CRL:
        ca = core.est.profile(label.gate.profile).ca
        crl = await request.config_dict[keys.PKIX_SERVICE].crl(ca)
        return m.Reply(m.SUCCESS, content=seal(_crl_only(crl), message.signer_der, cipher))
    raise m.BadMessage(m.BAD_REQUEST, f"messageType {kind!r} is not a request this RA serves")


def _serial(inner: bytes) -> int:
    try:
        return int(cms.IssuerAndSerialNumber.load(inner, strict=True)["serial_number"].native)
    except Exception:  # garbage inside a valid envelope
        raise GatewayError(ErrorKind.NOT_FOUND,
                           "the request does not hold an IssuerAndSerialNumber") from None


def _enrolled(result: EnrollResult, message: m.PkiMessage, cipher: str) -> m.Reply:
    if result.certificate_der is None:
        return m.Reply(m.PENDING)
    return _success([result.certificate_der], message, cipher)


def _success(ders: list[bytes], message: m.PkiMessage, cipher: str) -> m.Reply:
    certs = [x509.load_der_x509_certificate(d) for d in ders]
    degenerate = pkcs7.serialize_certificates(certs, Encoding.DER)
    return m.Reply(m.SUCCESS, content=seal(degenerate, message.signer_der, cipher))


def _crl_only(crl_der: bytes) -> bytes:
    signed = cms.SignedData({
        "version": "v1", "digest_algorithms": [], "encap_content_info": {"content_type": "data"},
        "crls": [asn1_crl.CertificateList.load(crl_der)], "signer_infos": []})
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())
