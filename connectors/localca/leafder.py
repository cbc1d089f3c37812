"""DER pieces of the local CA's leaves, written directly instead of through the library's builder.

A leaf is signed on the event loop for every order. The library's builder reads
every field back from Python objects, encodes the subject key afresh (an EC point
conversion) and parses the signed certificate again; the leaf's TBS is a fixed
shape whose variable parts (serial, validity, subject, key, names) are already
bytes or a few integers, so it is written here and only the signature is left
to the key. What comes out is byte for byte what the builder makes from the same
contents (the tests rebuild leaves with the library and compare).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
)
from cryptography.x509.oid import SignatureAlgorithmOID

_SEQUENCE = 0x30
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18
_CRITICAL = b"\x01\x01\xff"  # BOOLEAN TRUE; a non-critical extension omits the field (DEFAULT)
VERSION_3 = b"\xa0\x03\x02\x01\x02"  # [0] EXPLICIT INTEGER 2
EMPTY_NAME = b"\x30\x00"


def length(n: int) -> bytes:
    """A DER length: short form below 128, else the long form."""
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, body: bytes) -> bytes:
    """One DER element."""
    n = len(body)
    # The lengths a leaf has, written inline: this runs about twenty times per leaf.
    if n < 0x80:
        return bytes((tag, n)) + body
    if n < 0x100:
        return bytes((tag, 0x81, n)) + body
    return bytes((tag,)) + length(n) + body


def sequence(*parts: bytes) -> bytes:
    """A SEQUENCE of already encoded elements."""
    return tlv(_SEQUENCE, b"".join(parts))


def oid(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER from its dotted form."""
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytearray()
    for value in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [value & 0x7F]
        value >>= 7
        while value:
            chunk.append(0x80 | (value & 0x7F))
            value >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def positive_integer(value: int) -> bytes:
    """An INTEGER of a non-negative number, in the fewest octets (a leading 0 when the
    top bit would otherwise read as a sign)."""
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def time(when: datetime) -> bytes:
    """RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime after; whole seconds, UTC.

    A naive datetime is taken as UTC, as the library takes it.
    """
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    if 1950 <= when.year < 2050:
        return tlv(_UTC_TIME, when.strftime("%y%m%d%H%M%SZ").encode("ascii"))
    text = f"{when.year:04d}" + when.strftime("%m%d%H%M%SZ")
    return tlv(_GENERALIZED_TIME, text.encode("ascii"))


def extension(ext_oid: bytes, critical: bool, value: bytes) -> bytes:
    """An Extension: its OID (DER), the critical flag when set, the value's DER as an
    OCTET STRING."""
    return sequence(ext_oid, _CRITICAL if critical else b"", tlv(0x04, value))


def extensions(parts: list[bytes]) -> bytes:
    """The TBS field ``[3] EXPLICIT Extensions``."""
    return tlv(0xA3, sequence(*parts))


def general_names(dns_names: tuple[bytes, ...], ip_addresses: tuple[bytes, ...]) -> bytes:
    """GeneralNames of dNSNames (``[2]`` IA5String) then iPAddresses (``[7]``, packed)."""
    return sequence(*(tlv(0x82, n) for n in dns_names), *(tlv(0x87, a) for a in ip_addresses))


class LeafSigner:
    """How a CA key signs a TBS: the AlgorithmIdentifier to name and the call to make.

    Only what the builder would choose for the local CA's key types (``ca_key`` is
    the CA's public key): ECDSA with the given hash, or RSA PKCS#1 v1.5 (whose
    identifier carries NULL parameters).
    """

    _EC = {"sha256": SignatureAlgorithmOID.ECDSA_WITH_SHA256,
           "sha384": SignatureAlgorithmOID.ECDSA_WITH_SHA384}
    _RSA = {"sha256": SignatureAlgorithmOID.RSA_WITH_SHA256,
            "sha384": SignatureAlgorithmOID.RSA_WITH_SHA384}

    def __init__(self, ca_key: CertificateIssuerPublicKeyTypes,
                 hash_alg: hashes.SHA256 | hashes.SHA384) -> None:
        self.hash_alg = hash_alg
        if isinstance(ca_key, ec.EllipticCurvePublicKey):
            self.is_ec = True
            self.algorithm = sequence(oid(self._EC[hash_alg.name].dotted_string))
        elif isinstance(ca_key, rsa.RSAPublicKey):
            self.is_ec = False
            self.algorithm = sequence(oid(self._RSA[hash_alg.name].dotted_string), b"\x05\x00")
        else:
            raise TypeError(f"the local CA cannot sign leaves with a {type(ca_key).__name__}")
        self._ecdsa = ec.ECDSA(hash_alg)
        self._pkcs1 = padding.PKCS1v15()

    def certificate(self, key: CertificateIssuerPrivateKeyTypes, tbs: bytes) -> bytes:
        """The signed certificate of ``tbs`` (call where the key may sign)."""
        # The key matches the CA certificate's (checked at start), whose type chose is_ec.
        if self.is_ec:
            signature = cast(ec.EllipticCurvePrivateKey, key).sign(tbs, self._ecdsa)
        else:
            signature = cast(rsa.RSAPrivateKey, key).sign(tbs, self._pkcs1, self.hash_alg)
        return sequence(tbs, self.algorithm, tlv(0x03, b"\x00" + signature))
