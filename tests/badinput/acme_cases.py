"""Generated ACME requests: bodies, JWS structure and headers, payloads, names, CSRs, paths."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from tests.acmeclient import b64, jwk_of, make_csr, sign_raw
from tests.badinput import corpus
from tests.badinput.case import JOSE, TRANSPORT, Case
from tests.badinput.server import Target

DROP = object()  # a header member to leave out


@cache
def spare_key(kind: str) -> Any:
    """Keys made once per run: RSA generation costs tens of milliseconds."""
    if kind == "rsa1024":
        return rsa.generate_private_key(65537, 1024)
    if kind == "rsa2048":
        return rsa.generate_private_key(65537, 2048)
    if kind == "p521":
        return ec.generate_private_key(ec.SECP521R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def signed(t: Target, url: str, payload: bytes | None, header: dict[str, Any] | None = None,
           *, jwk: bool = False, key: Any = None,
           protected: Callable[[str], bytes] | None = None) -> Callable[[str], bytes]:
    """A JWS body signed when sent (with the nonce current then)."""
    def body(nonce: str) -> bytes:
        base: dict[str, Any] = {"alg": "ES256", "nonce": nonce, "url": url}
        if jwk:
            base["jwk"] = jwk_of(key or t.key)
        else:
            base["kid"] = t.kid
        base.update(header or {})
        fields = {k: v for k, v in base.items() if v is not DROP}
        prot = protected(nonce) if protected else json.dumps(fields).encode()
        return json.dumps(sign_raw(key or t.key, prot, payload)).encode()
    return body


def _endpoints(t: Target) -> list[str]:
    d = t.directory
    return [d["newAccount"], d["newOrder"], d["revokeCert"], d["keyChange"], t.kid,
            t.kid + "/orders", t.pending_order, t.pending_authz, t.challenge, t.certificate,
            t.ready_finalize]


def body_case(rng: random.Random, t: Target) -> Case:
    """A whole request body broken as JSON: depth, encoding, duplicates, bytes."""
    url = corpus.pick(rng, _endpoints(t))
    valid = signed(t, url, b"{}")("bm9uY2U")
    return Case("acme.body", "POST", url, corpus.broken_json(rng, valid))


def jws_case(rng: random.Random, t: Target) -> Case:
    """The flattened JWS object itself: members missing, extra, mistyped or not base64url."""
    url = corpus.pick(rng, _endpoints(t))
    make = signed(t, url, b"{}")

    def body(nonce: str) -> bytes:
        jws: dict[str, Any] = json.loads(make(nonce))
        kind = rng.randrange(6)
        name = corpus.pick(rng, ["protected", "payload", "signature"])
        if kind == 0:
            del jws[name]
        elif kind == 1:
            jws[name] = corpus.pick(rng, corpus.ODD_VALUES)
        elif kind == 2:
            jws[name] = corpus.b64_breakage(rng, jws[name])
        elif kind == 3:
            jws[corpus.pick(rng, ["header", "signatures", "extra", ""])] = {"kid": t.kid}
        elif kind == 4:
            jws = {"signatures": [jws], "payload": jws["payload"]}
        else:
            jws["signature"] = b64(corpus.mutate_bytes(rng, base64.urlsafe_b64decode(
                jws["signature"] + "==")))
        return json.dumps(jws).encode()
    return Case("acme.jws", "POST", url, body)


_HEADER_VALUES: dict[str, list[Any]] = {
    "alg": ["none", "HS256", "RS256", "ES384", "EdDSA", "es256", "", None, ["ES256"], 256, DROP],
    "nonce": ["", "bm90LWEtbm9uY2U", "!!", None, 1, ["x"], DROP, "A" * 5000],
    "url": ["", "http://127.0.0.1/acme/new-order", "/acme/new-order", None, 1, DROP,
            "http://example.com/\x00"],
    "kid": ["", "http://127.0.0.1:1/acme/acct/x", None, 1, {}, ["a"]],
    "jwk": [{}, {"kty": "EC"}, {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"}, {"kty": "oct", "k": "AAAA"},
            {"kty": "EC", "crv": "P-256", "x": 1, "y": []}, "jwk", None, [],
            {"kty": "OKP", "crv": "Ed25519", "x": "!!"}, {"kty": "EC", "crv": "P-999"}],
    "crit": [["b64"], [], "b64", None],
    "b64": [False, True, "no"],
}


def header_case(rng: random.Random, t: Target) -> Case:
    """The protected header: every member with wrong values, types, or broken as JSON."""
    url = corpus.pick(rng, _endpoints(t))
    payload = None if rng.random() < 0.3 else b"{}"
    kind = rng.randrange(5)
    if kind == 0:
        def protected(nonce: str) -> bytes:
            text = json.dumps({"alg": "ES256", "nonce": nonce, "url": url, "kid": t.kid})
            return corpus.broken_json(rng, text.encode())
        return Case("acme.header.json", "POST", url, signed(t, url, payload, protected=protected))
    if kind == 1:
        key = spare_key(corpus.pick(rng, ["rsa1024", "rsa2048", "p256"]))
        alg = corpus.pick(rng, ["ES256", "RS256", "ES512", "EdDSA"])
        return Case("acme.header.key", "POST", url,
                    signed(t, url, payload, {"alg": alg}, jwk=True, key=key))
    name = corpus.pick(rng, sorted(_HEADER_VALUES))
    change = {name: corpus.pick(rng, _HEADER_VALUES[name])}
    if name == "jwk" and rng.random() < 0.5:
        change["kid"] = DROP
    return Case("acme.header." + name, "POST", url, signed(t, url, payload, change))


def _payload(value: Any) -> bytes:
    return json.dumps(value).encode()


def _account_payloads(rng: random.Random) -> dict[str, Any]:
    name = corpus.pick(rng, ["termsOfServiceAgreed", "onlyReturnExisting", "contact",
                             "externalAccountBinding", "status"])
    value = corpus.pick(rng, corpus.ODD_VALUES + [["mailto:a@b.example\n"], ["mailto:"] * 20,
                                                  {"protected": "", "payload": "",
                                                   "signature": ""}])
    if name == "status" and value == "deactivated":
        value = "deactivated "
    return {name: value}


def _mistyped_flag(payload: dict[str, Any]) -> bool:
    """A boolean member of newAccount given another type (which is malformed)."""
    return any(name in payload and payload[name] is not None
               and not isinstance(payload[name], bool)
               for name in ("termsOfServiceAgreed", "onlyReturnExisting"))


def payload_case(rng: random.Random, t: Target) -> Case:
    """Each endpoint's payload with members of the wrong type or value."""
    d = t.directory
    kind = rng.randrange(9)
    odd = corpus.pick(rng, corpus.ODD_VALUES)
    if kind == 0:
        key = spare_key("p256") if rng.random() < 0.5 else None
        payload = _account_payloads(rng)
        return Case("acme.payload.newAccount", "POST", d["newAccount"], signed(
            t, d["newAccount"], _payload(payload), jwk=True, key=key),
            status=400 if _mistyped_flag(payload) else None)
    if kind == 1:
        return Case("acme.payload.account", "POST", t.kid,
                    signed(t, t.kid, _payload(_account_payloads(rng))))
    if kind == 2:
        member = corpus.pick(rng, ["identifiers", "notBefore", "notAfter", "profile"])
        body: dict[str, Any] = {"identifiers": [{"type": "dns", "value": "p.example.com"}],
                                member: odd}
        return Case("acme.payload.newOrder", "POST", d["newOrder"],
                    signed(t, d["newOrder"], _payload(body)))
    if kind == 3:
        value = corpus.pick(rng, [{"status": odd}, {"status": "valid"}, {"x": 1}])
        return Case("acme.payload.authz", "POST", t.pending_authz,
                    signed(t, t.pending_authz, _payload(value)))
    if kind == 4:
        return Case("acme.payload.challenge", "POST", t.challenge,
                    signed(t, t.challenge, _payload(corpus.pick(rng, [{"a": odd}, {"": odd}]))))
    if kind == 5:
        url = corpus.pick(rng, [t.pending_order, t.certificate, t.kid + "/orders"])
        pay = corpus.pick(rng, [b"{}", b"null", b"[]", b'""', b" ", b"\x00", b"{\"a\":1}"])
        return Case("acme.payload.post_as_get", "POST", url, signed(t, url, pay), status=400)
    if kind == 6:
        reason = corpus.pick(rng, [*corpus.ODD_VALUES, 7, 11, 1.0, "1"])
        cert = corpus.pick(rng, [b64(t.certificate_der), odd,
                                 corpus.b64_breakage(rng, b64(t.certificate_der)),
                                 b64(corpus.mutate_bytes(rng, t.certificate_der))])
        return Case("acme.payload.revoke", "POST", d["revokeCert"], signed(
            t, d["revokeCert"], _payload({"certificate": cert, "reason": reason})))
    if kind == 7:
        return key_change_case(rng, t)
    empty = corpus.pick(rng, [None, b""])
    url = corpus.pick(rng, [d["newOrder"], d["newAccount"], t.ready_finalize, d["revokeCert"]])
    return Case("acme.payload.empty", "POST", url, signed(t, url, empty, jwk=url == d[
        "newAccount"]))


def key_change_case(rng: random.Random, t: Target) -> Case:
    """A key change that is always wrong somewhere (a right one would move the account)."""
    url = t.directory["keyChange"]
    new = spare_key("p256")
    inner_header = {"alg": "ES256", "jwk": jwk_of(new), "url": url}
    # oldKey names the new key, never the account's: even an intact case is refused.
    body = {"account": t.kid, "oldKey": jwk_of(new)}
    kind = rng.randrange(4)
    if kind == 0:
        inner_header[corpus.pick(rng, ["alg", "jwk", "url", "nonce"])] = \
            corpus.pick(rng, corpus.ODD_VALUES)
    elif kind == 1:
        body[corpus.pick(rng, ["account", "oldKey"])] = corpus.pick(rng, corpus.ODD_VALUES)
    inner = sign_raw(new, json.dumps(inner_header).encode(), _payload(body))
    if kind == 2:
        inner["payload"] = b64(corpus.broken_json(rng, _payload(body)))
    elif kind == 3:
        inner["signature"] = b64(b"\x00" * 64)
    return Case("acme.payload.keyChange", "POST", url, signed(t, url, _payload(inner)))


def identifier_case(rng: random.Random, t: Target) -> Case:
    """newOrder with odd names, addresses, types and identifier objects."""
    url = t.directory["newOrder"]
    kind = rng.randrange(4)
    if kind == 0:
        idents: Any = [{"type": "dns", "value": corpus.pick(rng, corpus.ODD_NAMES)}
                       for _ in range(rng.randrange(1, 4))]
    elif kind == 1:
        idents = [{"type": "ip", "value": corpus.pick(rng, corpus.ODD_IPS)}]
    elif kind == 2:
        idents = [{"type": corpus.pick(rng, ["DNS", "email", "", None, 1, "ip "]),
                   "value": corpus.pick(rng, corpus.ODD_VALUES)}]
    else:
        idents = corpus.pick(rng, [[], {}, "a.example.com", [None], [[]], [{}],
                                   [{"type": "dns"}], [{"value": "a.example.com"}],
                                   [{"type": "dns", "value": "a.example.com"}] * 200])
    # One ill-formed identifier refuses the order: 400 unless every one is well formed.
    values = [i.get("value") for i in idents if isinstance(i, dict)] if kind < 2 else []
    refused = kind >= 2 or any(v not in corpus.WELL_FORMED for v in values)
    return Case("acme.identifiers", "POST", url, signed(t, url, _payload({"identifiers": idents})),
                status=400 if refused else None)


def ed25519_csr(key: ed25519.Ed25519PrivateKey) -> bytes:
    """A CSR with an EdDSA key (which no profile accepts)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ready.badinput.example")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, None)
    return csr.public_bytes(serialization.Encoding.DER)


def _csr_der(rng: random.Random) -> bytes:
    names = ["ready.badinput.example"]
    kind = rng.randrange(4)
    if kind == 0:
        key = spare_key(corpus.pick(rng, ["rsa1024", "p521", "p256", "ed25519"]))
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return ed25519_csr(key)
        return make_csr(names, key=key)[0]
    if kind == 1:
        try:
            return make_csr([corpus.pick(rng, corpus.ODD_NAMES)], key=spare_key("p256"))[0]
        except ValueError:
            return b""
    if kind == 2:
        try:
            return make_csr(names, key=spare_key("p256"),
                            cn=corpus.pick(rng, corpus.ODD_NAMES + corpus.ODD_IPS))[0]
        except ValueError:
            return b"\x30\x00"
    return corpus.mutate_bytes(rng, make_csr(names, key=spare_key("p256"))[0])


def csr_case(rng: random.Random, t: Target) -> Case:
    """finalize with CSRs truncated, mutated, badly encoded, with odd names or keys."""
    url = t.ready_finalize
    der = _csr_der(rng)
    csr: Any = b64(der)
    roll = rng.random()
    if roll < 0.15:
        csr = corpus.b64_breakage(rng, csr)
    elif roll < 0.25:
        csr = corpus.pick(rng, corpus.ODD_VALUES)
    elif roll < 0.3:
        csr = base64.b64encode(der).decode()  # standard alphabet, padded
    return Case("acme.csr", "POST", url, signed(t, url, _payload({"csr": csr})))


def content_type_case(rng: random.Random, t: Target) -> Case:
    """A well-signed request under another media type (415 territory)."""
    url = corpus.pick(rng, _endpoints(t))
    ctype = corpus.pick(rng, ["application/json", "text/plain", "", JOSE + "x",
                              "application/jose", "multipart/form-data; boundary=x",
                              "application/x-www-form-urlencoded"])
    return Case("acme.content_type", "POST", url, signed(t, url, b"{}"),
                headers={"Content-Type": ctype}, status=415)


def resource_id_case(rng: random.Random, t: Target) -> Case:
    """Existing routes with ids no resource has, signed for exactly that URL."""
    route = corpus.pick(rng, ["acct", "order", "authz", "chall", "cert"])
    ident = corpus.pick(rng, ["x", "0", "%00", "%2e%2e", "a" * 300, "%ff", "..", "-1", "%20"])
    url = t.url(f"/acme/{route}/{ident}")
    if route == "cert" and rng.random() < 0.5:  # an alternate chain that does not exist
        url = f"{t.certificate}/{ident}"
    return Case("acme.resource_id", "POST", url, signed(t, url, None))


def path_case(rng: random.Random, t: Target) -> Case:
    """Paths no route serves and methods routes do not take (404/405 territory)."""
    method = corpus.pick(rng, ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
    path = corpus.pick(rng, ["/acme/", "/acme/nothing", "/acme/new-order/x", "/acme/acct",
                             "/acme/directory/x", "/acme/new-order", "/acme/directory",
                             "/acme/new-nonce", "/acme//new-order", "/acme/%00",
                             "/acme/" + "a" * 2000, "/acme/cert/x/y"])
    return Case("acme.path", method, t.url(path), b"{}")


# certIDs that are not ones (no dot, padding, a negative or non-minimal serial, not
# base64url), and a well-formed one of a certificate never issued here (RFC 9773 §4.1).
ODD_CERT_IDS = ["x", ".", "a.", ".AQ", "a.b.c", "AA==.AQ", "AQ.gA", "AQ.AAE", "a+b.AQ",
                "%00.%ff", "A" * 3000 + ".AQ", "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"]


def renewal_info_case(rng: random.Random, t: Target) -> Case:
    """renewalInfo GETs naming no certificate issued here: 400 or 404, never more."""
    ident = corpus.pick(rng, ODD_CERT_IDS)
    return Case("acme.renewal_info", "GET", t.url(f"/acme/renewal-info/{ident}"), b"",
                headers={})


def replaces_case(rng: random.Random, t: Target) -> Case:
    """newOrder whose ``replaces`` is no certificate of this account: 400."""
    url = t.directory["newOrder"]
    value = corpus.pick(rng, [*ODD_CERT_IDS, 1, [], {}, True])
    payload = {"identifiers": [{"type": "dns", "value": "ready.badinput.example"}],
               "replaces": value}
    return Case("acme.replaces", "POST", url, signed(t, url, _payload(payload)), status=400)


def oversize_case(rng: random.Random, t: Target) -> Case:
    """Bodies past the ACME limit (256 KiB) and past the server's (1 MiB): 413."""
    url = corpus.pick(rng, _endpoints(t))
    size = corpus.pick(rng, [256 * 1024 + 1, 300 * 1024, 1024 * 1024 + 1])
    return Case("acme.oversize", "POST", url, b"{" + b" " * (size - 2) + b"}",
                group=TRANSPORT, status=413)


BUILDERS: list[tuple[Callable[[random.Random, Target], Case], int]] = [
    (body_case, 12), (jws_case, 10), (header_case, 14), (payload_case, 16),
    (identifier_case, 10), (csr_case, 10), (resource_id_case, 4), (content_type_case, 2),
    (path_case, 3), (oversize_case, 1), (renewal_info_case, 2), (replaces_case, 2),
]
"""Each builder with its weight: the ``MAIN`` group is most of a run."""
