"""A small, strict ACME client for tests: signs exactly what a test asks for.

Unlike real clients it can send malformed requests on purpose (wrong url,
reused nonce, wrong algorithm), so handler tests can check every refusal.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import josepy
from aiohttp import ClientResponse
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID


def b64(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_of(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> dict[str, Any]:
    """The public JWK of a key."""
    return josepy.JWK.load(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)).to_json()


def thumbprint(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    """RFC 7638 thumbprint."""
    return b64(josepy.JWK.from_json(jwk_of(key)).thumbprint())


def sign(key: Any, protected: dict[str, Any], payload: bytes | None) -> dict[str, str]:
    """A flattened JWS; ``payload`` None means POST-as-GET (empty payload)."""
    return sign_raw(key, json.dumps(protected).encode(), payload)


def sign_raw(key: Any, protected: bytes, payload: bytes | None) -> dict[str, str]:
    """A flattened JWS over a protected header given as bytes (which may be any bytes)."""
    prot = b64(protected)
    pay = "" if payload is None else b64(payload)
    data = f"{prot}.{pay}".encode()
    if isinstance(key, rsa.RSAPrivateKey):
        from cryptography.hazmat.primitives.asymmetric import padding

        sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return {"protected": prot, "payload": pay, "signature": b64(sig)}


def make_csr(names: list[str], key: Any = None, cn: str | None = None) -> tuple[bytes, Any]:
    """A DER CSR for DNS names (and IPs written as 'ip:1.2.3.4')."""
    import ipaddress

    key = key or ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for n in names:
        if n.startswith("ip:"):
            sans.append(x509.IPAddress(ipaddress.ip_address(n[3:])))
        else:
            sans.append(x509.DNSName(n))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER), key


@dataclass
class AcmeClient:
    """Drives an ACME server through an aiohttp-like session (TestClient or ClientSession)."""

    session: Any
    directory_url: str
    key: Any = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    kid: str | None = None
    nonce: str | None = None
    directory: dict[str, Any] = field(default_factory=dict)

    async def start(self) -> dict[str, Any]:
        """Fetch the directory and a first nonce."""
        async with self.session.get(self.directory_url) as resp:
            self.directory = await resp.json()
        async with self.session.head(self.directory["newNonce"]) as resp:
            self.nonce = resp.headers["Replay-Nonce"]
        return self.directory

    async def post(self, url: str, payload: Any = None, *, use_jwk: bool = False,
                   key: Any = None, protected: dict[str, Any] | None = None,
                   raw: bytes | None = None) -> tuple[ClientResponse, Any]:
        """POST a signed request; returns the response and its decoded body."""
        header: dict[str, Any] = {"alg": "RS256" if isinstance(key or self.key, rsa.RSAPrivateKey)
                                  else "ES256", "nonce": self.nonce, "url": url}
        if use_jwk or self.kid is None:
            header["jwk"] = jwk_of(key or self.key)
        else:
            header["kid"] = self.kid
        header.update(protected or {})
        body = None if payload is None else json.dumps(payload).encode()
        data = raw if raw is not None else json.dumps(sign(key or self.key, header, body)).encode()
        resp = await self.session.post(url, data=data,
                                       headers={"Content-Type": "application/jose+json"})
        self.nonce = resp.headers.get("Replay-Nonce", self.nonce)
        text = await resp.text()
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return resp, parsed

    async def register(self) -> dict[str, Any]:
        """newAccount with ToS agreed; remembers the kid."""
        resp, body = await self.post(self.directory["newAccount"],
                                     {"termsOfServiceAgreed": True}, use_jwk=True)
        assert resp.status in (200, 201), body
        self.kid = resp.headers["Location"]
        return body

    async def new_order(self, names: list[str]) -> tuple[str, dict[str, Any]]:
        """newOrder for DNS names (or 'ip:...' IPs); returns (order URL, order)."""
        idents = [{"type": "ip", "value": n[3:]} if n.startswith("ip:") else
                  {"type": "dns", "value": n} for n in names]
        resp, body = await self.post(self.directory["newOrder"], {"identifiers": idents})
        assert resp.status == 201, body
        return resp.headers["Location"], body

    def key_authorization(self, token: str) -> str:
        """token.thumbprint."""
        return f"{token}.{thumbprint(self.key)}"
