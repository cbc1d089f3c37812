"""Turns an HTTP POST into a verified ACME request: the front door of every handler."""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

from aiohttp import web

from gateway import keys
from gateway.acme import jws as jwslib
from gateway.acme.nonces import Nonces
from gateway.acme.render import Urls, urls_at
from gateway.core.keys import jwk_thumbprint
from gateway.errors import ErrorKind, GatewayError
from gateway.model.records import Account

JOSE_JSON = "application/jose+json"
MAX_BODY = 256 * 1024


@dataclass
class Verified:
    """A POST whose JWS passed every check.

    Not frozen: one is made per request, and a frozen dataclass's __init__ sets each
    field through object.__setattr__ (about four times the cost).
    """

    jws: jwslib.Jws
    urls: Urls
    account: Account | None = None
    jwk: dict[str, Any] | None = None
    thumbprint: str = ""

    @cached_property
    def payload(self) -> dict[str, Any]:
        """The payload as a JSON object (decoded once)."""
        return self.jws.json_payload()

    def post_as_get(self) -> None:
        """Refuse any payload on a resource that is only read (RFC 8555 §6.3).

        POST-as-GET means the payload is the empty string; ``{}`` is a request
        with content (a challenge response, an account update), not a read.
        """
        if not self.jws.is_post_as_get:
            raise GatewayError(ErrorKind.MALFORMED,
                               "this resource is read with POST-as-GET: the JWS payload must be "
                               "empty (\"\"), not {} or any JSON")

    def owner(self) -> Account:
        """The signing account (only for kid-signed requests)."""
        assert self.account is not None
        return self.account


class Answering(NamedTuple):
    """The request being answered, with the application, URLs and nonces every step reads."""

    request: web.Request
    app: web.Application
    urls: Urls
    nonces: Nonces


# Set by routes.answer for the request it runs: the steps of one answer (middleware,
# verifier, handler, headers) read the application and the URLs about six times, and
# request.app and the request's own dict each cost a few Python calls per read.
_ANSWERING: ContextVar[Answering | None] = ContextVar("acme_answering", default=None)


def begin_answer(request: web.Request) -> tuple[Answering, Token[Answering | None]]:
    """Look the application, URLs and nonces of ``request`` up once, for the steps after."""
    app = request.app
    answering = Answering(request, app, _urls(app, request), app[keys.NONCES])
    return answering, _ANSWERING.set(answering)


def end_answer(token: Token[Answering | None]) -> None:
    """The answer begun with ``token`` is made."""
    _ANSWERING.reset(token)


def answering(request: web.Request) -> Answering:
    """What :func:`begin_answer` looked up for ``request`` (looked up now if it did not)."""
    current = _ANSWERING.get()
    if current is not None and current.request is request:
        return current
    app = request.app
    return Answering(request, app, _urls(app, request), app[keys.NONCES])


def config(request: web.Request) -> web.Application:
    """The application state a handler reads (settings, nonces, core).

    The ACME routes sit on the gateway application itself, so this is a plain
    mapping, not the chain of parent applications ``request.config_dict`` builds.
    """
    current = _ANSWERING.get()
    if current is not None and current.request is request:
        return current.app
    return request.app


def urls_for(request: web.Request) -> Urls:
    """URLs as the client addressed us, unless a public base URL is configured."""
    current = _ANSWERING.get()
    if current is not None and current.request is request:
        return current.urls
    return _urls(request.app, request)


def _urls(app: web.Application, request: web.Request) -> Urls:
    base = app[keys.SETTINGS].server.base_url
    return urls_at(base.rstrip("/") if base else f"{request.scheme}://{request.host}")


async def verified(request: web.Request, *, jwk_allowed: bool = False,
                   kid_allowed: bool = True) -> Verified:
    """Parse and verify a JWS-signed POST (RFC 8555 §6.2–6.5)."""
    # The exact header, as clients send it, needs no parse of its parameters.
    if request.headers.get("Content-Type") != JOSE_JSON and request.content_type != JOSE_JSON:
        raise GatewayError(ErrorKind.UNSUPPORTED_MEDIA_TYPE,
                           f"ACME requests must have Content-Type {JOSE_JSON}")
    # The body's size was checked before the handler ran (routes.answer, within_limit).
    jws = jwslib.parse(await _body(request))
    current = answering(request)
    urls = current.urls
    header = jws.header
    if header["url"] != urls.path(request.raw_path):
        raise GatewayError(ErrorKind.UNAUTHORIZED,
                           "the JWS url header does not match the request URL")
    if not await current.nonces.consume(header["nonce"]):
        raise GatewayError(ErrorKind.BAD_NONCE, "JWS has an invalid anti-replay nonce")
    kid = header.get("kid")  # parse() let through exactly one of a kid (a str) and a jwk
    if kid is None:
        jwk = header["jwk"]
        if not jwk_allowed:
            raise GatewayError(ErrorKind.MALFORMED,
                               "this resource needs a kid (account URL), not an embedded jwk")
        jwslib.verify(jws, jwslib.public_key(jwk))
        return Verified(jws, urls, jwk=jwk, thumbprint=jwk_thumbprint(jwk))
    if not kid_allowed:
        raise GatewayError(ErrorKind.MALFORMED, "this resource needs an embedded jwk, not a kid")
    return await _verified_by_account(current.app, jws, kid, urls)


async def _body(request: web.Request) -> bytes:
    content = request.content
    if request.content_length is not None and content.is_eof() and content.exception() is None:
        # The whole body has arrived (an ACME POST is small and comes with its headers):
        # take it in one call; request.read() awaits it chunk by chunk into a copy.
        return content.read_nowait()
    try:
        return await request.read()
    except ConnectionResetError:  # the client half-closed before sending Content-Length bytes
        raise GatewayError(ErrorKind.MALFORMED,
                           "the request body ended before its Content-Length") from None


async def _verified_by_account(app: web.Application, jws: jwslib.Jws, kid: str,
                               urls: Urls) -> Verified:
    account_id = urls.account_id(kid)
    if account_id is None:
        raise GatewayError(ErrorKind.ACCOUNT_DOES_NOT_EXIST,
                           "the kid is not an account URL of this server")
    account = await app[keys.CORE].accounts.get(account_id)
    jwslib.verify(jws, jwslib.account_public_key(account.thumbprint, account.jwk))
    return Verified(jws, urls, account=account, jwk=account.jwk, thumbprint=account.thumbprint)
