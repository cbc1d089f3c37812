"""Reading a key's SubjectPublicKeyInfo (and a CSR's subject) straight out of DER.

Shared by the core (finalize compares keys by these bytes) and the local CA
(which derives a key identifier from them); it imports nothing of either.

Loading a key object to compare or hash it costs a point decode and a curve
check (and re-encoding it, a point conversion); the SPKI is already in the
bytes the library parsed. These walkers only find it: they run on DER the
library has accepted, and answer None for anything they do not expect, so a
caller always has the library's own way to fall back on.
"""

from __future__ import annotations

_SEQUENCE = 0x30
_CONTEXT_0 = 0xA0  # [0] EXPLICIT: a certificate's version
_INTEGER = 0x02

# A named-curve EC SPKI as the library encodes it, up to the uncompressed point:
# SEQUENCE { SEQUENCE { id-ecPublicKey, curve }, BIT STRING { 0 unused, 0x04 ‖ X ‖ Y } }.
# Any other encoding of the same key (a compressed point, explicit parameters) differs.
_EC_PREFIXES = {
    "secp256r1": bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d03010703420004"),
    "secp384r1": bytes.fromhex("3076301006072a8648ce3d020106052b8104002203620004"),
}
_EC_POINT_BYTES = {"secp256r1": 64, "secp384r1": 96}


def element(der: bytes, pos: int) -> tuple[int, int, int]:
    """The tag, content start and end of the DER element at ``pos``.

    Raises IndexError or ValueError on a truncated or indefinite-length element.
    """
    tag = der[pos]
    first = der[pos + 1]
    start = pos + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if not 1 <= count <= 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(der[start:start + count], "big")
        start += count
    end = start + length
    if end > len(der):
        raise ValueError("truncated DER")
    return tag, start, end


def _skip(der: bytes, pos: int, count: int) -> int:
    """The position after ``count`` consecutive elements starting at ``pos``."""
    for _ in range(count):
        pos = element(der, pos)[2]
    return pos


def _sequence_at(der: bytes, pos: int) -> bytes | None:
    tag, _, end = element(der, pos)
    return der[pos:end] if tag == _SEQUENCE else None


def certificate_spki(der: bytes) -> bytes | None:
    """The SubjectPublicKeyInfo element of a DER X.509 certificate, as encoded there."""
    try:
        tag, body, _ = element(der, 0)
        tbs_tag, pos, _ = element(der, body)
        if tag != _SEQUENCE or tbs_tag != _SEQUENCE:
            return None
        if der[pos] == _CONTEXT_0:
            pos = _skip(der, pos, 1)
        if der[pos] != _INTEGER:
            return None
        # serialNumber, signature, issuer, validity, subject: then the SPKI.
        return _sequence_at(der, _skip(der, pos, 5))
    except (IndexError, ValueError):
        return None


def csr_spki(der: bytes) -> bytes | None:
    """The SubjectPublicKeyInfo element of a DER PKCS#10 request, as encoded there."""
    try:
        tag, body, _ = element(der, 0)
        info_tag, pos, _ = element(der, body)
        if tag != _SEQUENCE or info_tag != _SEQUENCE or der[pos] != _INTEGER:
            return None
        # version, subject: then the SPKI.
        return _sequence_at(der, _skip(der, pos, 2))
    except (IndexError, ValueError):
        return None


def csr_request_info(der: bytes) -> bytes | None:
    """The CertificationRequestInfo element of a DER PKCS#10 request: the signed bytes."""
    try:
        tag, body, end = element(der, 0)
        info_tag, _, info_end = element(der, body)
    except (IndexError, ValueError):
        return None
    if tag != _SEQUENCE or info_tag != _SEQUENCE or end != len(der):
        return None
    return der[body:info_end]


def csr_subject(der: bytes) -> bytes | None:
    """The subject Name element of a DER PKCS#10 request, as encoded there."""
    try:
        tag, body, _ = element(der, 0)
        info_tag, pos, _ = element(der, body)
        if tag != _SEQUENCE or info_tag != _SEQUENCE or der[pos] != _INTEGER:
            return None
        return _sequence_at(der, _skip(der, pos, 1))  # after the version
    except (IndexError, ValueError):
        return None


def is_canonical_ec_spki(spki: bytes, curve: str) -> bool:
    """True when ``spki`` is byte for byte how the library encodes a ``curve`` key.

    That is a named curve and an uncompressed point; the library has already
    checked (when it loaded the key) that the point's coordinates are on the curve.
    """
    prefix = _EC_PREFIXES.get(curve)
    if prefix is None:
        return False
    return len(spki) == len(prefix) + _EC_POINT_BYTES[curve] and spki.startswith(prefix)
