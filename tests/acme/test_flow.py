"""The ACME order flow through the handlers, end to end inside one process."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from gateway import keys
from tests.acme.flow import issue, validate_all
from tests.acme.support import Gateway
from tests.acmeclient import b64, jwk_of, make_csr, sign

ACME = "urn:ietf:params:acme:error:"


async def test_directory_lists_resources_and_meta(gateway: Gateway) -> None:
    directory = await gateway.client().start()
    for name in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange"):
        assert directory[name].startswith("http://127.0.0.1")
    assert directory["meta"]["externalAccountRequired"] is False
    assert "default" in directory["meta"]["profiles"]


async def test_new_nonce_head_and_get(gateway: Gateway) -> None:
    url = "/acme/new-nonce"
    head = await gateway.http.head(url)
    get = await gateway.http.get(url)
    assert (head.status, get.status) == (200, 204)
    assert head.headers["Replay-Nonce"] != get.headers["Replay-Nonce"]
    assert head.headers["Cache-Control"] == "no-store"
    assert 'rel="index"' in head.headers["Link"]
    # An explicit empty length lets clients keep the connection after a HEAD.
    assert head.headers["Content-Length"] == "0"


async def test_new_account_created_then_found(gateway: Gateway) -> None:
    c = gateway.client()
    await c.start()
    resp, body = await c.post(c.directory["newAccount"],
                              {"contact": ["mailto:ops@example.com"],
                               "termsOfServiceAgreed": True}, use_jwk=True)
    assert resp.status == 201 and body["status"] == "valid"
    location = resp.headers["Location"]
    again, _ = await c.post(c.directory["newAccount"], {"onlyReturnExisting": True}, use_jwk=True)
    assert again.status == 200 and again.headers["Location"] == location


async def test_only_return_existing_for_unknown_key(gateway: Gateway) -> None:
    c = gateway.client()
    await c.start()
    resp, body = await c.post(c.directory["newAccount"], {"onlyReturnExisting": True},
                              use_jwk=True)
    assert resp.status == 400 and body["type"] == ACME + "accountDoesNotExist"


async def test_full_order_issues_a_chain_with_the_names(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    _, order, key = await issue(c, ["www.example.com", "example.com"])
    assert order["status"] == "valid"
    resp, pem = await c.post(order["certificate"])
    assert resp.headers["Content-Type"].startswith("application/pem-certificate-chain")
    chain = x509.load_pem_x509_certificates(pem.encode())
    leaf, issuer = chain[0], chain[1]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == ["example.com", "www.example.com"]
    assert leaf.issuer == issuer.subject
    leaf.verify_directly_issued_by(issuer)
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()


async def test_a_fresh_certificate_is_downloaded_only_by_its_account(gateway: Gateway) -> None:
    """Right after issuance the download is served from this process's copy: same bytes as
    the store holds, same ownership rule."""
    c, other = await gateway.ready_client(), await gateway.ready_client()
    _, order, _ = await issue(c, ["fresh.example.com"])
    resp, pem = await c.post(order["certificate"])
    core = gateway.http.server.app[keys.CORE]
    cert_id = order["certificate"].rsplit("/", 1)[1]
    assert core.issuance.recent.get(cert_id) is not None
    stored = await core.issuance.store.get_certificate(cert_id)
    assert resp.status == 200 and stored is not None and pem == stored.chain_pem
    resp, body = await other.post(order["certificate"])
    assert resp.status == 403 and body["type"] == ACME + "unauthorized"


async def test_ip_identifier_is_issued_without_dns01(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    _, order = await c.new_order(["ip:192.0.2.7"])
    _, authz = await c.post(order["authorizations"][0])
    assert {ch["type"] for ch in authz["challenges"]} == {"http-01", "tls-alpn-01"}
    await validate_all(c, order)
    csr, _ = make_csr(["ip:192.0.2.7"])
    resp, done = await c.post(order["finalize"], {"csr": b64(csr)})
    assert done["status"] == "valid", done


async def test_wildcard_offers_only_dns01(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    _, order = await c.new_order(["*.example.org"])
    _, authz = await c.post(order["authorizations"][0])
    assert authz["wildcard"] is True and authz["identifier"]["value"] == "example.org"
    assert [ch["type"] for ch in authz["challenges"]] == ["dns-01"]
    await validate_all(c, order)
    csr, _ = make_csr(["*.example.org"])
    _, done = await c.post(order["finalize"], {"csr": b64(csr)})
    assert done["status"] == "valid"
    assert gateway.validator.tasks[-1].wildcard is True


async def test_challenge_answer_links_up_and_validates(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    _, order = await c.new_order(["a.example.com"])
    _, authz = await c.post(order["authorizations"][0])
    chall = authz["challenges"][0]
    resp, body = await c.post(chall["url"], {})
    assert resp.status == 200 and body["status"] in ("processing", "valid")
    assert f'<{order["authorizations"][0]}>;rel="up"' in resp.headers.getall("Link")
    task = gateway.validator.tasks[-1]
    assert task.key_authorization == c.key_authorization(chall["token"])


async def test_failed_validation_invalidates_order_with_subproblem(gateway: Gateway) -> None:
    from gateway.errors import ErrorKind
    from gateway.validation import ValidationFailure

    gateway.validator.failure = ValidationFailure(ErrorKind.INCORRECT_RESPONSE, "wrong content")
    c = await gateway.ready_client()
    order_url, order = await c.new_order(["bad.example.com"])
    await validate_all(c, order)
    _, authz = await c.post(order["authorizations"][0])
    assert authz["status"] == "invalid"
    assert authz["challenges"][0]["error"]["type"] == ACME + "incorrectResponse"
    _, final = await c.post(order_url)
    assert final["status"] == "invalid"
    sub = final["error"]["subproblems"][0]
    assert sub["identifier"] == {"type": "dns", "value": "bad.example.com"}
    assert sub["type"] == ACME + "incorrectResponse"


async def test_repeated_finalize_returns_the_order(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    _, order, _ = await issue(c, ["r.example.com"])
    csr, _ = make_csr(["r.example.com"])
    resp, again = await c.post(order["finalize"], {"csr": b64(csr)})
    assert resp.status == 200 and again["certificate"] == order["certificate"]


async def test_orders_list(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    first, _ = await c.new_order(["one.example.com"])
    second, _ = await c.new_order(["two.example.com"])
    _, acct = await c.post(c.kid)
    _, listing = await c.post(acct["orders"])
    assert listing["orders"] == [first, second]


async def test_account_update_and_deactivation(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    _, body = await c.post(c.kid, {"contact": ["mailto:new@example.com"]})
    assert body["contact"] == ["mailto:new@example.com"]
    resp, body = await c.post(c.kid, {"status": "deactivated"})
    assert body["status"] == "deactivated"
    resp, body = await c.post(c.directory["newOrder"],
                              {"identifiers": [{"type": "dns", "value": "x.example.com"}]})
    assert resp.status == 403 and body["type"] == ACME + "unauthorized"


async def test_key_change_moves_the_account_to_the_new_key(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    new_key = ec.generate_private_key(ec.SECP256R1())
    url = c.directory["keyChange"]
    inner = sign(new_key, {"alg": "ES256", "jwk": jwk_of(new_key), "url": url},
                 __import__("json").dumps({"account": c.kid, "oldKey": jwk_of(c.key)}).encode())
    resp, body = await c.post(url, inner)
    assert resp.status == 200, body
    old_key, c.key = c.key, new_key
    resp, _ = await c.post(c.kid)
    assert resp.status == 200
    c.key = old_key
    resp, body = await c.post(c.kid)
    assert resp.status == 400 and body["type"] == ACME + "malformed"


async def test_key_change_to_a_key_in_use_conflicts(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    other = await gateway.ready_client()
    url = c.directory["keyChange"]
    inner = sign(other.key, {"alg": "ES256", "jwk": jwk_of(other.key), "url": url},
                 __import__("json").dumps({"account": c.kid, "oldKey": jwk_of(c.key)}).encode())
    resp, body = await c.post(url, inner)
    assert resp.status == 409 and resp.headers["Location"] == other.kid


async def test_authz_deactivation_invalidates_the_order(gateway: Gateway) -> None:
    c = await gateway.ready_client()
    order_url, order = await c.new_order(["d.example.com"])
    _, authz = await c.post(order["authorizations"][0], {"status": "deactivated"})
    assert authz["status"] == "deactivated"
    _, final = await c.post(order_url)
    assert final["status"] == "invalid"
