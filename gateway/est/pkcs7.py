"""The DER structures EST answers with: certs-only PKCS#7 and CsrAttrs (RFC 7030 §4.1.3, §4.5.2).

``CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID``, where ``AttrOrOID`` is an
OBJECT IDENTIFIER or an ``Attribute`` (type and a SET of values).
"""

from __future__ import annotations

from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from gateway.config import ProfileSettings

OID_CHALLENGE_PASSWORD = "1.2.840.113549.1.9.7"
OID_RSA = "1.2.840.113549.1.1.1"
OID_EC = "1.2.840.10045.2.1"
OID_P256 = "1.2.840.10045.3.1.7"
OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"
OID_RSA_SHA256 = "1.2.840.113549.1.1.11"
OID_SUBJECT_ALT_NAME = "2.5.29.17"


class _Values(core.SetOf):  # type: ignore[misc]
    _child_spec = core.Any


class _Attribute(core.Sequence):  # type: ignore[misc]
    _fields = [("type", core.ObjectIdentifier), ("values", _Values)]


class AttrOrOID(core.Choice):  # type: ignore[misc]
    """One CsrAttrs entry."""

    _alternatives = [("oid", core.ObjectIdentifier), ("attribute", _Attribute)]


class CsrAttrs(core.SequenceOf):  # type: ignore[misc]
    """The csrattrs answer."""

    _child_spec = AttrOrOID


def certs_only(ders: tuple[bytes, ...] | list[bytes]) -> bytes:
    """A degenerate SignedData holding ``ders`` in the given order (no signers)."""
    certs = [x509.load_der_x509_certificate(d) for d in ders]
    return pkcs7.serialize_certificates(certs, Encoding.DER)


def _oid(dotted: str) -> AttrOrOID:
    return AttrOrOID(name="oid", value=core.ObjectIdentifier(dotted))


def csr_attributes(profile: ProfileSettings, proof_of_possession: bool) -> bytes:
    """What a CSR for ``profile`` should carry, as DER CsrAttrs.

    The key type (an EC key as the attribute naming its curve, as in RFC 7030
    §4.5.2), the signature algorithm, the subjectAltName extension (the profile's
    names are checked from SANs), and challengePassword when the label wants
    proof of possession.
    """
    entries: list[AttrOrOID] = []
    if proof_of_possession:
        entries.append(_oid(OID_CHALLENGE_PASSWORD))
    if profile.key_types[0] == "ec":
        curve = core.ObjectIdentifier(OID_P256)
        entries.append(AttrOrOID(name="attribute", value=_Attribute({
            "type": OID_EC, "values": _Values([core.Any.load(curve.dump())])})))
        entries.append(_oid(OID_ECDSA_SHA256))
    else:
        entries.append(_oid(OID_RSA))
        entries.append(_oid(OID_RSA_SHA256))
    entries.append(_oid(OID_SUBJECT_ALT_NAME))
    return bytes(CsrAttrs(entries).dump())


def parse_csr_attributes(der: bytes) -> list[str | tuple[str, list[bytes]]]:
    """Entries of a CsrAttrs: dotted OIDs, or (attribute OID, DER values) (for tests, tools)."""
    out: list[str | tuple[str, list[bytes]]] = []
    for entry in CsrAttrs.load(der):
        if entry.name == "oid":
            out.append(entry.chosen.dotted)
        else:
            attr = entry.chosen
            out.append((attr["type"].dotted, [v.dump() for v in attr["values"]]))
    return out
