"""The wire form of an External Account Binding (RFC 8555 §7.3.4).

newAccount may carry ``externalAccountBinding``: a flattened JWS, MACed with
the operator-issued HMAC key, whose protected header has ``alg`` (an HS*
algorithm), ``kid`` (the key id) and ``url`` (the newAccount URL, no nonce),
and whose payload is the account's public key — the outer JWS's ``jwk``. This
module checks that form; the core checks the MAC and the key
(:mod:`gateway.core.eab`).
"""

from __future__ import annotations

from typing import Any

from gateway.acme import jws as jwslib
from gateway.acme.jsonstrict import loads_object
from gateway.core.eab import MAC_ALGORITHMS, EabProof
from gateway.core.keys import jwk_thumbprint
from gateway.errors import ErrorKind, GatewayError


def _malformed(why: str) -> GatewayError:
    return GatewayError(ErrorKind.MALFORMED, f"externalAccountBinding: {why}")


def eab_proof(payload: dict[str, Any], outer: jwslib.Jws,
              account_thumbprint: str) -> EabProof | None:
    """The binding of a newAccount payload, checked for form; None when there is none."""
    binding = payload.get("externalAccountBinding")
    if binding is None:
        return None
    if not isinstance(binding, dict) or set(binding) != {"protected", "payload", "signature"}:
        raise _malformed("must be a flattened JWS with protected, payload and signature")
    protected, inner_payload = binding["protected"], binding["payload"]
    header = loads_object(jwslib.b64decode(protected, "the binding's protected"),
                          "the binding's protected header")
    alg = header.get("alg")
    if alg not in MAC_ALGORITHMS:
        raise GatewayError(ErrorKind.BAD_SIGNATURE_ALGORITHM,
                           f"externalAccountBinding: algorithm {alg!r} is not a MAC; use "
                           f"{', '.join(MAC_ALGORITHMS)}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _malformed("the protected header needs the key id (kid) you were given")
    if "nonce" in header:
        raise _malformed("the protected header must not carry a nonce")
    if header.get("url") != outer.header["url"]:
        raise _malformed("its url must equal the newAccount URL")
    key = loads_object(jwslib.b64decode(inner_payload, "the binding's payload"),
                       "the binding's payload")
    if jwk_thumbprint(key) != account_thumbprint:
        raise _malformed("its payload must be the account key (the jwk of the outer JWS)")
    return EabProof(kid=kid, alg=alg, signing_input=f"{protected}.{inner_payload}".encode(),
                    mac=jwslib.b64decode(binding["signature"], "the binding's signature"))
