"""Weak account keys: refused at newAccount and key-change; a weak account orders nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway import keys
from gateway.model.records import Account, new_id
from gateway.model.store import Insert
from tests.acme.support import Gateway
from tests.acmeclient import jwk_of, sign, thumbprint
from tests.weakkeys import WEAK_KEYS, fermat_key, roca_key

ACME = "urn:ietf:params:acme:error:"


@pytest.mark.parametrize("weakness", sorted(WEAK_KEYS))
async def test_new_account_with_a_weak_key_is_refused(gateway: Gateway, weakness: str) -> None:
    make, words = WEAK_KEYS[weakness]
    c = gateway.client()
    c.key = make()
    await c.start()
    resp, body = await c.post(c.directory["newAccount"], {"termsOfServiceAgreed": True},
                              use_jwk=True)
    assert resp.status == 400 and body["type"] == ACME + "badPublicKey"
    assert body["detail"].startswith("the account key is weak: ") and words in body["detail"]


async def test_key_change_to_a_weak_key_is_refused(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    weak = fermat_key()
    url = c.directory["keyChange"]
    inner = sign(weak, {"alg": "RS256", "jwk": jwk_of(weak), "url": url},
                 json.dumps({"account": c.kid, "oldKey": jwk_of(c.key)}).encode())
    resp, body = await c.post(url, inner)
    assert resp.status == 400 and body["type"] == ACME + "badPublicKey"
    assert "Fermat" in body["detail"]
    resp, _ = await c.post(c.kid)  # the account still answers to its old key
    assert resp.status == 200


async def test_account_with_a_weak_key_orders_only_after_a_key_change(gateway: Gateway) -> None:
    c = gateway.client()
    await c.start()
    # An account registered before its key was judged weak: it is in the store already.
    c.key, account_id = roca_key(), new_id()
    account = Account(id=account_id, thumbprint=thumbprint(c.key), jwk=jwk_of(c.key),
                      tos_agreed=True, created_at=datetime.now(UTC))
    await gateway.http.server.app[keys.CORE].accounts.store.apply([Insert(account)])
    c.kid = c.directory["newAccount"].replace("new-account", f"acct/{account_id}")
    idents = {"identifiers": [{"type": "dns", "value": "w.example.com"}]}
    resp, body = await c.post(c.directory["newOrder"], idents)
    assert resp.status == 400 and body["type"] == ACME + "badPublicKey"
    assert "ROCA" in body["detail"] and "key-change" in body["detail"]
    sound = ec.generate_private_key(ec.SECP256R1())
    url = c.directory["keyChange"]
    inner = sign(sound, {"alg": "ES256", "jwk": jwk_of(sound), "url": url},
                 json.dumps({"account": c.kid, "oldKey": jwk_of(c.key)}).encode())
    resp, body = await c.post(url, inner)
    assert resp.status == 200, body
    c.key = sound
    resp, body = await c.post(c.directory["newOrder"], idents)
    assert resp.status == 201, body
