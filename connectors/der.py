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
_BIT_STRING = 0x03

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
    # One- and two-octet long forms (every length in a certificate or CSR) are read
    # inline: the walkers below call this for each element they pass.
    if first < 0x80:
        start = pos + 2
        end = start + first
    elif first == 0x81:
        start = pos + 3
        end = start + der[pos + 2]
    elif first == 0x82:
        start = pos + 4
        end = start + (der[pos + 2] << 8 | der[pos + 3])
    else:
        count = first & 0x7F
        if not 1 <= count <= 4:
            raise ValueError("unsupported DER length")
        start = pos + 2 + count
        if start > len(der):
            raise IndexError("truncated DER length")
        end = start + int.from_bytes(der[pos + 2:start], "big")
    if end > len(der):
        raise ValueError("truncated DER")
    return tag, start, end


def _content(der: bytes, pos: int) -> int:
    """Where the content of the element at ``pos`` starts."""
    first = der[pos + 1]
    if first < 0x80:
        return pos + 2
    if first == 0x81:
        return pos + 3
    if first == 0x82:
        return pos + 4
    return element(der, pos)[1]


def _skip(der: bytes, pos: int, count: int) -> int:
    """The position after ``count`` consecutive elements starting at ``pos``.

    The usual lengths are read inline, without a call per element: the walkers
    run several times per issuance. Reading past the end raises IndexError.
    """
    for _ in range(count):
        first = der[pos + 1]
        if first < 0x80:
            pos += 2 + first
        elif first == 0x81:
            pos += 3 + der[pos + 2]
        elif first == 0x82:
            pos += 4 + (der[pos + 2] << 8 | der[pos + 3])
        else:
            pos = element(der, pos)[2]
    return pos


def _sequence_at(der: bytes, pos: int) -> bytes | None:
    end = _skip(der, pos, 1)
    return der[pos:end] if der[pos] == _SEQUENCE and end <= len(der) else None


def _body_of_first(der: bytes) -> int | None:
    """Where the first element inside the outer SEQUENCE's first SEQUENCE starts
    (a certificate's TBS, a request's CertificationRequestInfo), or None."""
    if der[0] != _SEQUENCE:
        return None
    inner = _content(der, 0)
    return _content(der, inner) if der[inner] == _SEQUENCE else None


def certificate_spki(der: bytes) -> bytes | None:
    """The SubjectPublicKeyInfo element of a DER X.509 certificate, as encoded there."""
    try:
        pos = _body_of_first(der)
        if pos is None:
            return None
        if der[pos] == _CONTEXT_0:
            pos = _skip(der, pos, 1)
        if der[pos] != _INTEGER:
            return None
        # serialNumber, signature, issuer, validity, subject: then the SPKI.
        return _sequence_at(der, _skip(der, pos, 5))
    except (IndexError, ValueError):
        return None


def _csr_field(der: bytes, index: int) -> bytes | None:
    """Field ``index`` (a SEQUENCE) of a DER PKCS#10 request's CertificationRequestInfo."""
    try:
        pos = _body_of_first(der)
        if pos is None or der[pos] != _INTEGER:
            return None
        return _sequence_at(der, _skip(der, pos, index))
    except (IndexError, ValueError):
        return None


def csr_spki(der: bytes) -> bytes | None:
    """The SubjectPublicKeyInfo element of a DER PKCS#10 request, as encoded there."""
    return _csr_field(der, 2)  # after the version and the subject


def csr_subject(der: bytes) -> bytes | None:
    """The subject Name element of a DER PKCS#10 request, as encoded there."""
    return _csr_field(der, 1)  # after the version


def csr_request_info(der: bytes) -> bytes | None:
    """The CertificationRequestInfo element of a DER PKCS#10 request: the signed bytes."""
    try:
        if der[0] != _SEQUENCE or _skip(der, 0, 1) != len(der):
            return None
        return _sequence_at(der, _content(der, 0))
    except (IndexError, ValueError):
        return None


def spki_key_bits(spki: bytes) -> bytes | None:
    """The subjectPublicKey bits (a whole number of octets) of a DER SubjectPublicKeyInfo,
    or None when ``spki`` is not SEQUENCE { AlgorithmIdentifier, BIT STRING } exactly."""
    try:
        if spki[0] != _SEQUENCE or _skip(spki, 0, 1) != len(spki):
            return None
        bits = _skip(spki, _content(spki, 0), 1)  # after the AlgorithmIdentifier
        if spki[bits] != _BIT_STRING or _skip(spki, bits, 1) != len(spki):
            return None
        start = _content(spki, bits)
        return spki[start + 1:] if spki[start] == 0 else None  # no unused bits
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
