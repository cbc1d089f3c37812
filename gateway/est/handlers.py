"""EST operation handlers: authenticate, decode the body, one core call, render (RFC 7030 §4)."""

from __future__ import annotations

import logging

from aiohttp import web

from gateway import keys
from gateway.core.est import EnrollRequest
from gateway.est import wire
from gateway.est.auth import Caller, authenticate_audited, tls_unique
from gateway.est.pkcs7 import certs_only, csr_attributes
from gateway.est.settings import EstSettings, LabelSettings
from gateway.textfront import label_of

log = logging.getLogger("gateway.est")

EST_SETTINGS: web.AppKey[EstSettings] = web.AppKey("est_settings", EstSettings)


def _est(request: web.Request) -> EstSettings:
    return request.app[EST_SETTINGS]


def _label(request: web.Request) -> LabelSettings:
    est = _est(request)
    return label_of(request, est.labels, est.default_label, "EST")


def _line_length(request: web.Request, label: LabelSettings) -> int:
    """The label's base64 line length, or one line for clients known to need it."""
    # strongSwan pki 5.9 sends no User-Agent at all, hence "" as a marker of a missing one.
    agent = request.headers.get("User-Agent")
    markers = _est(request).one_line_user_agents
    if ("" in markers and agent is None) or any(m and m in (agent or "") for m in markers):
        return 0
    return label.base64_line_length


async def cacerts(request: web.Request) -> web.Response:
    """GET cacerts: the issuing CA's certificates, anonymous (RFC 7030 §4.1)."""
    label = _label(request)
    ders = await request.config_dict[keys.CORE].est.ca_certs(label.profile)
    return wire.base64_response(certs_only(ders), wire.PKCS7, _line_length(request, label))


async def csrattrs(request: web.Request) -> web.Response:
    """GET csrattrs: what a CSR for this label's profile should contain (RFC 7030 §4.5)."""
    label = _label(request)
    profile = request.config_dict[keys.CORE].est.profile(label.profile)
    der = csr_attributes(profile, label.proof_of_possession)
    return wire.base64_response(der, wire.CSRATTRS, _line_length(request, label))


async def _enroll_request(request: web.Request, renewing: bool
                          ) -> tuple[LabelSettings, Caller, EnrollRequest]:
    label = _label(request)
    caller = await authenticate_audited(request, _est(request), label, renewing)
    binding = None
    if label.proof_of_possession:
        binding = tls_unique(request)
        if binding is None:
            raise wire.malformed("proof of possession needs tls-unique, which only TLS 1.2 "
                                 "has; connect with TLS 1.2")
    try:
        body = await request.read()
    except ConnectionResetError:  # the client half-closed before sending Content-Length bytes
        raise wire.malformed("the request body ended before its Content-Length") from None
    csr_der = wire.decode_body(body)
    return label, caller, EnrollRequest(
        requester=caller.requester, profile=label.profile, csr_der=csr_der,
        wait_seconds=_est(request).enroll_wait_seconds, channel_binding=binding,
        renewing=caller.client_cert if renewing else None, allowed_names=caller.names,
        label=label.name)


async def _enroll(request: web.Request, renewing: bool) -> web.Response:
    label, caller, enroll = await _enroll_request(request, renewing)
    result = await request.config_dict[keys.CORE].est.enroll(enroll)
    log.info("est enroll", extra={"fields": {
        "label": label.name, "requester": caller.requester, "order": result.order_id,
        "renewal": renewing, "issued": result.certificate_der is not None}})
    if result.certificate_der is None:
        return wire.pending_response(_est(request).retry_after_seconds)
    body = certs_only([result.certificate_der])
    return wire.base64_response(body, wire.PKCS7_CERTS_ONLY, _line_length(request, label))


async def simpleenroll(request: web.Request) -> web.Response:
    """POST simpleenroll: a first certificate (RFC 7030 §4.2.1)."""
    return await _enroll(request, renewing=False)


async def simplereenroll(request: web.Request) -> web.Response:
    """POST simplereenroll: renew the TLS client certificate (RFC 7030 §4.2.2)."""
    return await _enroll(request, renewing=True)


async def serverkeygen(request: web.Request) -> web.Response:
    """POST serverkeygen: the key part (PKCS#8) first, then the certificate (RFC 7030 §4.4)."""
    label, caller, enroll = await _enroll_request(request, renewing=False)
    key_der, cert_der = await request.config_dict[keys.CORE].est.server_keygen(enroll)
    log.info("est serverkeygen", extra={"fields": {
        "label": label.name, "requester": caller.requester}})
    return wire.multipart_response([(wire.PKCS8, key_der),
                                    (wire.PKCS7_CERTS_ONLY, certs_only([cert_der]))],
                                   _line_length(request, label))


async def fullcmc(request: web.Request) -> web.Response:
    """POST fullcmc: not offered (RFC 7030 §4.3 makes it optional)."""
    _label(request)
    return wire.text_response(501, "fullcmc is not implemented by this gateway; use "
                              "simpleenroll, simplereenroll or serverkeygen")
