"""Where the local CA's signing key lives: a file (default) or a PKCS#11 token.

A backend hands out a cryptography private-key object that the certificate,
CRL and OCSP builders sign with, and says where that signing must run:
a file key signs inline on the event loop (an EC P-256 signature costs ~50 µs,
less than an executor hop), a token key signs in the backend's own thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
)

from connectors.base import CAConfigError

T = TypeVar("T")

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")


SignHash = hashes.SHA256 | hashes.SHA384


def hash_for(key_type: str) -> SignHash:
    """The signature hash that matches a key type's strength."""
    return hashes.SHA384() if key_type == "ec-p384" else hashes.SHA256()


def key_type_of(public_key: object) -> str | None:
    """The ``KEY_TYPES`` name of a public key, or None when it is none of them."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ec-p256", "secp384r1": "ec-p384"}.get(public_key.curve.name)
    if isinstance(public_key, rsa.RSAPublicKey):
        name = f"rsa-{public_key.key_size}"
        return name if name in KEY_TYPES else None
    return None


def generate_private_key(key_type: str) -> CertificateIssuerPrivateKeyTypes:
    """A fresh software key of ``key_type``."""
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    bits = int(key_type.removeprefix("rsa-"))
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


class KeyBackend(Protocol):
    """A CA signing key and the place its signatures are made."""

    key_type: str
    created: bool  # open(create=True) generated the key

    def describe(self) -> str:
        """Where the key lives, for ``ca info`` and error messages (never a secret)."""
        ...

    async def open(self, create: bool) -> None:
        """Load the key (creating it when ``create`` and it does not exist)."""
        ...

    def signing_key(self) -> CertificateIssuerPrivateKeyTypes:
        """The private-key object to pass to cryptography's builders, inside :meth:`run`."""
        ...

    def public_key(self) -> CertificateIssuerPublicKeyTypes:
        """The CA's public key."""
        ...

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (which signs with :meth:`signing_key`) where signing is allowed."""
        ...

    async def check(self) -> None:
        """Raise CAUnavailable when the key cannot sign right now."""
        ...

    async def close(self) -> None:
        """Release sessions and threads."""
        ...


class FileKeyBackend:
    """The CA key as an unencrypted PKCS#8 PEM file, mode 0600, in the CA directory."""

    def __init__(self, path: Path, key_type: str) -> None:
        self.path = path
        self.key_type = key_type
        self.created = False
        self._key: CertificateIssuerPrivateKeyTypes | None = None

    def describe(self) -> str:
        """The key file's path."""
        return f"file {self.path}"

    async def open(self, create: bool) -> None:
        """Load the key file; create it first when asked and absent."""
        if not self.path.exists():
            if not create:
                raise CAConfigError(
                    f"CA key file {self.path} does not exist; run `acme-gateway ca init` "
                    "or remove the CA certificate so that the gateway creates both"
                )
            self._key = self._create()
            self.created = True
            return
        self._key = self._load()

    def _create(self) -> CertificateIssuerPrivateKeyTypes:
        key = generate_private_key(self.key_type)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never overwrite a key that appeared meanwhile; 0600 from the first byte.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        return key

    def _load(self) -> CertificateIssuerPrivateKeyTypes:
        try:
            key = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise CAConfigError(
                f"cannot load the CA key {self.path}: {exc}; restore the file or re-create the CA"
            ) from exc
        found = key_type_of(key.public_key())
        if found != self.key_type or not isinstance(
            key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        ):
            raise CAConfigError(
                f"CA key {self.path} is {found or type(key).__name__}, but key_type is "
                f'{self.key_type}; set key_type = "{found}" or re-create the CA'
            )
        return key

    def signing_key(self) -> CertificateIssuerPrivateKeyTypes:
        """The loaded key."""
        if self._key is None:
            raise CAConfigError("the CA key is not loaded; call start() first")
        return self._key

    def public_key(self) -> CertificateIssuerPublicKeyTypes:
        """The loaded key's public half."""
        return self.signing_key().public_key()

    async def run(self, fn: Callable[[], T]) -> T:
        """Sign inline: a software signature is cheaper than a thread hop."""
        return fn()

    async def check(self) -> None:
        """A loaded file key is always usable."""
        self.signing_key()

    async def close(self) -> None:
        """Nothing to release."""
