"""ACME resource handlers: verify the POST, make one core call, render the result."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway import jsontext, keys
from gateway.acme import jws as jwslib
from gateway.acme import render, requests
from gateway.acme.eab import eab_proof
from gateway.acme.post import Verified, config, urls_for, verified
from gateway.core.keys import jwk_thumbprint
from gateway.errors import ErrorKind, GatewayError
from gateway.model.records import PROCESSING, Authorization, Order

PEM_CHAIN = "application/pem-certificate-chain"
ORDERS_PAGE = 100


# What web.json_response wrote: its text is sent with a charset.
JSON_UTF8 = "application/json; charset=utf-8"


def _json(body: dict[str, Any], status: int = 200, location: str | None = None,
          headers: dict[str, str] | None = None) -> web.Response:
    return _json_text(jsontext.compact(body), status, location, headers)


def _json_text(text: str, status: int = 200, location: str | None = None,
               headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer already rendered as text (see render.authz_text)."""
    # The response made from bytes and its header fields at once: web.json_response
    # adds a call, a text-to-bytes path and a Content-Type built from its parts.
    fields = {"Content-Type": JSON_UTF8}
    if location:
        fields["Location"] = location
    if headers:
        fields.update(headers)
    return web.Response(body=text.encode(), status=status, headers=fields)


def _retry_after(request: web.Request) -> dict[str, str]:
    seconds = config(request)[keys.SETTINGS].acme.retry_after_seconds
    return {"Retry-After": str(seconds)}


def _order_response(request: web.Request, v: Verified, order: Order,
                    status: int = 200) -> web.Response:
    headers = _retry_after(request) if order.status == PROCESSING else None
    return _json_text(render.order_text(v.urls, order), status, v.urls.order(order.id), headers)


def _authz_response(request: web.Request, v: Verified, authz: Authorization) -> web.Response:
    headers = None
    for chall in authz.challenges:  # a loop, not any() over a generator: one per poll
        if chall.status == PROCESSING:
            headers = _retry_after(request)
            break
    return _json_text(render.authz_text(v.urls, authz), headers=headers)


async def directory(request: web.Request) -> web.Response:
    """GET /acme/directory."""
    return _json(render.directory(urls_for(request), config(request)[keys.SETTINGS]))


async def renewal_info(request: web.Request) -> web.Response:
    """GET /acme/renewal-info/{certID}: when to renew (RFC 9773 §4.2), unauthenticated."""
    core = config(request)[keys.CORE]
    window = await core.renewals.renewal_info(request.match_info["cert_id"])
    retry = config(request)[keys.SETTINGS].acme.renewal_info_retry_after_seconds
    return _json(render.renewal_info(window), headers={"Retry-After": str(retry)})


async def new_nonce(request: web.Request) -> web.Response:
    """HEAD answers 200, GET 204 (RFC 8555 §7.2); the nonce is added by the middleware."""
    config(request)[keys.CORE].limits.admit_nonce()
    if request.method == "HEAD":
        # An explicit empty length: without it some clients (aiohttp's) cannot tell
        # where the answer ends and close the connection after every HEAD.
        return web.Response(status=200, headers={"Cache-Control": "no-store",
                                                 "Content-Length": "0"})
    return web.Response(status=204, headers={"Cache-Control": "no-store"})


async def new_account(request: web.Request) -> web.Response:
    """POST /acme/new-account: create, or find with onlyReturnExisting."""
    v = await verified(request, jwk_allowed=True, kid_allowed=False)
    assert v.jwk is not None
    core = config(request)[keys.CORE]
    proof = eab_proof(v.payload, v.jws, v.thumbprint)
    account, created = await core.accounts.register(
        v.jwk, v.thumbprint, requests.new_account(v.payload), eab=proof)
    return _json(render.account(v.urls, account), 201 if created else 200,
                 v.urls.account(account.id))


async def account(request: web.Request) -> web.Response:
    """POST /acme/acct/{id}: read (empty payload), update contacts, or deactivate."""
    v = await verified(request)
    if v.owner().id != request.match_info["id"]:
        raise GatewayError(ErrorKind.UNAUTHORIZED, "the request is signed by another account")
    acct = v.owner()
    if not v.jws.is_post_as_get:
        acct = await config(request)[keys.CORE].accounts.update(
            acct, requests.account_update(v.payload))
    return _json(render.account(v.urls, acct), location=v.urls.account(acct.id))


async def account_orders(request: web.Request) -> web.Response:
    """POST-as-GET /acme/acct/{id}/orders, paginated with Link rel=next."""
    v = await verified(request)
    v.post_as_get()
    if v.owner().id != request.match_info["id"]:
        raise GatewayError(ErrorKind.UNAUTHORIZED, "the request is signed by another account")
    after = request.query.get("cursor", "")
    ids = await config(request)[keys.CORE].orders.list_orders(v.owner(), after,
                                                                  ORDERS_PAGE + 1)
    resp = _json({"orders": [v.urls.order(i) for i in ids[:ORDERS_PAGE]]})
    if len(ids) > ORDERS_PAGE:
        nxt = f"{v.urls.orders(v.owner().id)}?cursor={ids[ORDERS_PAGE - 1]}"
        resp.headers.add("Link", f'<{nxt}>;rel="next"')
    return resp


async def key_change(request: web.Request) -> web.Response:
    """POST /acme/key-change: the inner JWS is signed by the new key (RFC 8555 §7.3.5)."""
    v = await verified(request)
    inner = jwslib.parse(v.jws.payload, inner=True)
    if inner.jwk is None:
        raise GatewayError(ErrorKind.MALFORMED, "the inner JWS must carry the new key as jwk")
    if inner.header["url"] != v.jws.header["url"]:
        raise GatewayError(ErrorKind.MALFORMED, "the inner and outer JWS urls differ")
    jwslib.verify(inner, jwslib.public_key(inner.jwk))
    body = inner.json_payload()
    if body.get("account") != v.jws.kid:
        raise GatewayError(ErrorKind.MALFORMED, "the inner payload names another account")
    old = body.get("oldKey")
    if not isinstance(old, dict) or jwk_thumbprint(old) != v.owner().thumbprint:
        raise GatewayError(ErrorKind.MALFORMED, "oldKey is not the account's current key")
    core = config(request)[keys.CORE]
    try:
        acct = await core.accounts.change_key(v.owner(), inner.jwk, jwk_thumbprint(inner.jwk))
    except GatewayError as exc:
        if exc.kind is ErrorKind.CONFLICT:
            raise GatewayError(ErrorKind.CONFLICT,
                               "the new key is already in use by another account",
                               location=v.urls.account(exc.detail) if exc.detail else None) from exc
        raise
    return _json(render.account(v.urls, acct), location=v.urls.account(acct.id))


async def new_order(request: web.Request) -> web.Response:
    """POST /acme/new-order."""
    v = await verified(request)
    order = await config(request)[keys.CORE].orders.new_order(
        v.owner(), requests.new_order(v.payload))
    return _order_response(request, v, order, 201)


async def order(request: web.Request) -> web.Response:
    """POST-as-GET /acme/order/{id}; held while processing (core.polls)."""
    v = await verified(request)
    v.post_as_get()
    found = await config(request)[keys.CORE].polls.order(request.match_info["id"], v.owner())
    return _order_response(request, v, found)


async def finalize(request: web.Request) -> web.Response:
    """POST /acme/order/{id}/finalize with {"csr": base64url(DER)}."""
    v = await verified(request)
    payload = v.payload
    if "csr" not in payload:
        raise GatewayError(ErrorKind.MALFORMED, "the finalize payload needs a csr")
    csr_der = jwslib.b64decode(payload["csr"], "csr")
    done = await config(request)[keys.CORE].issuance.finalize(
        v.owner(), request.match_info["id"], csr_der)
    return _order_response(request, v, done)


async def authz(request: web.Request) -> web.Response:
    """POST-as-GET /acme/authz/{id}, or deactivation with {"status": "deactivated"}."""
    v = await verified(request)
    core = config(request)[keys.CORE]
    if v.jws.is_post_as_get:  # held while its challenge is validated (core.polls)
        found = await core.polls.authz(request.match_info["id"], v.owner())
    else:
        found = await core.orders.deactivate_authz(v.owner(), request.match_info["id"],
                                                   requests.authz_status(v.payload))
    return _authz_response(request, v, found)


async def challenge(request: web.Request) -> web.Response:
    """POST /acme/chall/{id}: {} starts validation; an empty payload reads it."""
    v = await verified(request)
    core = config(request)[keys.CORE]
    chall_id = request.match_info["id"]
    if v.jws.is_post_as_get:  # held while it is validated (core.polls)
        found = await core.polls.challenge(chall_id, v.owner())
        chall = found.challenge(chall_id)
    else:
        found, chall = await core.orders.respond_challenge(v.owner(), chall_id)
    assert chall is not None
    headers = _retry_after(request) if chall.status == PROCESSING else {}
    headers["Link"] = f'<{v.urls.authz(found.id)}>;rel="up"'
    return _json_text(render.challenge_text(v.urls, chall), headers=headers)


async def certificate(request: web.Request) -> web.Response:
    """POST-as-GET /acme/cert/{id}[/{chain}]: a PEM chain, leaf first (RFC 8555 §7.4.2).

    The default chain, or alternate number ``chain``; every other chain is named
    with ``Link: rel="alternate"``.
    """
    v = await verified(request)
    v.post_as_get()
    core = config(request)[keys.CORE]
    cert = await core.issuance.get_certificate(request.match_info["id"], v.owner())
    chains = await core.chains.chains(cert)
    chosen = _chain_number(request.match_info.get("chain", "0"), len(chains))
    resp = web.Response(text=chains[chosen], content_type=PEM_CHAIN)
    for other in range(len(chains)):
        if other != chosen:
            resp.headers.add("Link", f'<{v.urls.certificate(cert.id, other)}>;rel="alternate"')
    return resp


def _chain_number(text: str, count: int) -> int:
    if not (text.isdigit() and text.isascii()) or int(text) >= count:
        raise GatewayError(ErrorKind.NOT_FOUND, "no such alternate chain of this certificate")
    return int(text)


async def revoke_cert(request: web.Request) -> web.Response:
    """POST /acme/revoke-cert, signed by the account or by the certificate's key."""
    v = await verified(request, jwk_allowed=True)
    payload = v.payload
    cert_der = jwslib.b64decode(payload.get("certificate"), "certificate")
    await config(request)[keys.CORE].issuance.revoke(
        cert_der, payload.get("reason"), v.account, None if v.account else v.jwk)
    return web.Response(status=200)
