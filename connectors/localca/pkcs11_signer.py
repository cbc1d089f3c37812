"""cryptography private-key objects whose signatures are made by a PKCS#11 token.

cryptography's certificate, CRL and OCSP builders accept any subclass of its
private-key ABCs and call its ``sign``; these subclasses forward that call to
the token. They must only be used in the token's own thread (see
:mod:`connectors.localca.pkcs11_keys`). ECDSA: SoftHSM 2.6 has no CKM_ECDSA_SHA256,
so the digest is computed here, signed with raw CKM_ECDSA, and the r||s
answer DER-encoded as ECDSA-Sig-Value. RSA: PKCS#1 v1.5 with the hash done by
the token (CKM_SHA256_RSA_PKCS / CKM_SHA384_RSA_PKCS).
"""

from __future__ import annotations

from typing import Any, NoReturn, Self

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from pkcs11 import Mechanism

_RSA_MECHANISMS = {
    "sha256": Mechanism.SHA256_RSA_PKCS,
    "sha384": Mechanism.SHA384_RSA_PKCS,
    "sha512": Mechanism.SHA512_RSA_PKCS,
}


class TokenKeyRef:
    """The current token object of the CA key; replaced when the session is reopened."""

    key: Any = None


def _refuse(what: str) -> NoReturn:
    raise TypeError(f"the CA key lives in an HSM and cannot be used for {what}")


def _digest(data: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


class _InToken:
    """What every token key shares: it cannot leave the token, and copies are itself."""

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        """Refused: the key is not extractable."""
        _refuse("export")

    def __copy__(self) -> Self:
        # The builders copy keys; the token object is shared state, so a copy is the same key.
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self


class TokenECKey(_InToken, ec.EllipticCurvePrivateKey):
    """An EC key in a token: ``sign`` only."""

    def __init__(self, ref: TokenKeyRef, public: ec.EllipticCurvePublicKey) -> None:
        self._ref = ref
        self._public = public

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        signature_algorithm: ec.EllipticCurveSignatureAlgorithm,
    ) -> bytes:
        """Hash here, sign the digest with CKM_ECDSA, return DER ECDSA-Sig-Value."""
        if not isinstance(signature_algorithm, ec.ECDSA):
            _refuse(f"{type(signature_algorithm).__name__} signatures")
        algorithm = signature_algorithm.algorithm
        if isinstance(algorithm, utils.Prehashed):
            digest = bytes(data)
        else:
            digest = _digest(bytes(data), algorithm)
        raw = self._ref.key.sign(digest, mechanism=Mechanism.ECDSA)
        half = len(raw) // 2
        r, s = int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        return utils.encode_dss_signature(r, s)

    @property
    def curve(self) -> ec.EllipticCurve:
        """The key's curve."""
        return self._public.curve

    @property
    def key_size(self) -> int:
        """The curve's size in bits."""
        return self._public.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half, read from the token at open."""
        return self._public

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        """Refused: the CA key signs only."""
        _refuse("key agreement")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        """Refused: the key is not extractable."""
        _refuse("export")


class TokenRSAKey(_InToken, rsa.RSAPrivateKey):
    """An RSA key in a token: PKCS#1 v1.5 ``sign`` only."""

    def __init__(self, ref: TokenKeyRef, public: rsa.RSAPublicKey) -> None:
        self._ref = ref
        self._public = public

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        padding_: padding.AsymmetricPadding,
        algorithm: object,
    ) -> bytes:
        """Sign with CKM_SHA*_RSA_PKCS; the token hashes."""
        if not isinstance(padding_, padding.PKCS1v15) or not isinstance(
            algorithm, hashes.HashAlgorithm
        ):
            _refuse(f"{type(padding_).__name__} / {type(algorithm).__name__} signatures")
        mechanism = _RSA_MECHANISMS.get(algorithm.name)
        if mechanism is None:
            _refuse(f"{algorithm.name} signatures")
        signature: bytes = self._ref.key.sign(bytes(data), mechanism=mechanism)
        return signature

    @property
    def key_size(self) -> int:
        """The modulus size in bits."""
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        """The public half, read from the token at open."""
        return self._public

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        """Refused: the CA key signs only."""
        _refuse("decryption")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        """Refused: the key is not extractable."""
        _refuse("export")
