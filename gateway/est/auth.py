"""Who is asking: TLS client certificates and HTTP Basic, per label (RFC 7030 §3.2.3, §3.3).

The listener asks every client for a certificate (optional, so ACME clients are
unaffected) and OpenSSL verifies it against the union of all labels' trust
anchors. Here each label then accepts only certificates directly issued by the
anchors the operator gave it for that purpose:

* a first enrollment: the label's ``client_ca_files`` (e.g. a manufacturer CA),
  and the label's own issuing CA only where ``trust_issuing_ca = true``;
* a re-enrollment: the label's issuing CA (the core then checks that the
  certificate is one this gateway issued, on this label's profile).

A certificate the gateway issued through ACME authenticates nowhere unless its
profile sets ``acme_certs_authenticate_est`` (checked in the core). A requester
becomes a synthetic account id: ``est:user:<name>`` for Basic,
``est:cert:<sha256 of the certificate>`` for a certificate alone; what it may
request is its grant (:mod:`gateway.est.grants`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ssl
from dataclasses import dataclass

from aiohttp import web
from cryptography import x509

from gateway import keys
from gateway.errors import ErrorKind, GatewayError
from gateway.est.grants import grant
from gateway.est.passwords import verify_password_async
from gateway.est.settings import EstSettings, LabelSettings


class AuthRequired(Exception):
    """401: credentials are missing or wrong; the client should retry with Basic.

    ``presented`` is False for the usual first request without credentials, which
    is part of the Basic exchange and not worth an audit event.
    """

    def __init__(self, reason: str, presented: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.presented = presented


@dataclass(frozen=True)
class Caller:
    """An authenticated EST client."""

    requester: str
    client_cert: bytes | None  # DER, verified, when the client presented one
    names: tuple[str, ...] = ()  # the patterns it may request on a first enrollment


def forbidden(detail: str) -> GatewayError:
    """403 with a reason."""
    return GatewayError(ErrorKind.UNAUTHORIZED, detail)


def ssl_object(request: web.Request) -> ssl.SSLObject | None:
    """The connection's TLS object (None over plain HTTP)."""
    if request.transport is None:
        return None
    obj = request.transport.get_extra_info("ssl_object")
    return obj if isinstance(obj, ssl.SSLObject) else None


def peer_certificate(request: web.Request) -> bytes | None:
    """The client certificate (DER) that TLS verified, if one was presented."""
    tls = ssl_object(request)
    return tls.getpeercert(binary_form=True) if tls is not None else None


def tls_unique(request: web.Request) -> bytes | None:
    """The tls-unique channel binding; None on TLS 1.3, which has none (RFC 8446 §C.5)."""
    tls = ssl_object(request)
    if tls is None or tls.version() != "TLSv1.2":
        return None
    return tls.get_channel_binding("tls-unique")


def _basic(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, ValueError):
        raise AuthRequired("the Authorization header is not valid HTTP Basic") from None
    if not sep:
        raise AuthRequired("the Authorization header is not valid HTTP Basic")
    return user, password


async def _basic_user(request: web.Request, est: EstSettings, label: LabelSettings) -> str | None:
    creds = _basic(request)
    if creds is None:
        return None
    user, password = creds
    entry = est.users.get(user)
    if not await verify_password_async(password, entry.password_hash if entry else None):
        raise AuthRequired("wrong user name or password")
    if label.users and user not in label.users:
        raise forbidden(f"user {user!r} may not enroll through label {label.name!r}")
    return user


def _issued_by_any(cert: x509.Certificate, anchors: tuple[bytes, ...]) -> bool:
    for der in anchors:
        try:
            cert.verify_directly_issued_by(x509.load_der_x509_certificate(der))
            return True
        except Exception:  # wrong issuer name, bad signature or another key type: not this one
            continue
    return False


async def _label_trusts(request: web.Request, label: LabelSettings, cert_der: bytes,
                        renewing: bool) -> bool:
    cert = x509.load_der_x509_certificate(cert_der)
    if not renewing and _issued_by_any(cert, label.client_ca_der):
        return True
    if not (renewing or label.trust_issuing_ca):
        return False
    # trust_anchors skips a CA that cannot answer now (the certificate is then refused).
    issuing = await request.config_dict[keys.CORE].est.trust_anchors((label.profile,))
    return _issued_by_any(cert, issuing)


def claimed_requester(request: web.Request) -> str:
    """Who a refused request claimed to be, for the audit trail (never the password)."""
    try:
        creds = _basic(request)
    except AuthRequired:
        creds = None
    if creds is not None:
        return f"est:user:{creds[0]}"
    cert = peer_certificate(request)
    return f"est:cert:{hashlib.sha256(cert).hexdigest()}" if cert else "est:anonymous"


async def authenticate_audited(request: web.Request, est: EstSettings, label: LabelSettings,
                               renewing: bool = False) -> Caller:
    """:func:`authenticate`, recording refused credentials in the audit trail."""
    try:
        return await authenticate(request, est, label, renewing)
    except AuthRequired as exc:
        if exc.presented:
            await _record(request, label, exc.reason)
        raise
    except GatewayError as exc:
        if exc.kind is ErrorKind.UNAUTHORIZED:
            await _record(request, label, exc.detail)
        raise


async def _record(request: web.Request, label: LabelSettings, detail: str) -> None:
    await request.config_dict[keys.CORE].est.record_refusal(
        claimed_requester(request), label.profile, f"label {label.name!r}: {detail}")


async def authenticate(request: web.Request, est: EstSettings, label: LabelSettings,
                       renewing: bool = False) -> Caller:
    """Check the label's rule; raise AuthRequired (401) or a 403 GatewayError."""
    if ssl_object(request) is None:
        raise forbidden("EST enrollment needs HTTPS")
    if label.auth == "none":
        raise forbidden(f"label {label.name!r} serves only cacerts and csrattrs (auth = none)")
    cert = peer_certificate(request)
    if cert is not None:
        # A certificate we issued and later revoked, or issued through ACME, is refused
        # whatever the mode.
        await request.config_dict[keys.CORE].est.client_certificate(cert)
    cert_ok = cert is not None and (renewing or label.wants_cert) \
        and await _label_trusts(request, label, cert, renewing)
    user = await _basic_user(request, est, label) if label.wants_basic else None
    _check_mode(label, cert, cert_ok, user, renewing)
    trusted = cert if cert_ok else None
    names = grant(est, label, user, None if renewing else trusted)
    if user is not None:
        return Caller(f"est:user:{user}", trusted, names)
    assert cert is not None
    return Caller(f"est:cert:{hashlib.sha256(cert).hexdigest()}", cert, names)


def _check_mode(label: LabelSettings, cert: bytes | None, cert_ok: bool, user: str | None,
                renewing: bool) -> None:
    if cert is not None and not cert_ok and (label.wants_cert or renewing):
        raise forbidden(f"the client certificate is not issued by a CA that label "
                        f"{label.name!r} trusts for "
                        + ("re-enrollment (its issuing CA)" if renewing else
                           "enrollment (client_ca_files"
                           + (", trust_issuing_ca)" if label.trust_issuing_ca else ")")))
    if renewing and not cert_ok:
        raise forbidden("re-enrollment needs the certificate being renewed as the TLS "
                        "client certificate")
    need_basic = label.auth in ("basic", "both") or (label.auth == "either" and not cert_ok)
    if need_basic and user is None:
        raise AuthRequired("credentials are required: HTTP Basic user and password"
                           + (" or a client certificate" if label.auth == "either" else ""),
                           presented=False)
    if label.auth in ("cert", "both") and not cert_ok:
        raise forbidden(f"label {label.name!r} needs a TLS client certificate")
