"""CSR parsing and checks shared by ACME finalize and EST enroll.

The names a CSR asks for are compared with what was authorized; the key is
checked against the profile's key rules. Every refusal is a ``badCSR`` (or
``badPublicKey``) GatewayError whose detail names the rule.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar, cast

from asn1crypto import csr as asn1_csr
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PublicKeyTypes,
)
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from connectors.der import csr_request_info, csr_spki, is_canonical_ec_spki
from gateway.core import goodkey
from gateway.errors import ErrorKind, GatewayError
from gateway.model.records import Identifier

ALLOWED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}
_Ext = TypeVar("_Ext", bound=x509.ExtensionType)
_ECDSA_BY_OID = {
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: ec.ECDSA(hashes.SHA256()),
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: ec.ECDSA(hashes.SHA384()),
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: ec.ECDSA(hashes.SHA512()),
}
_IPV4_TEXT = frozenset("0123456789.")  # every character an IPv4 address may be written with


@dataclass(frozen=True)
class ParsedCSR:
    """The parts of a CSR the core decides on."""

    der: bytes
    csr: x509.CertificateSigningRequest
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    common_name: str | None
    key_type: str  # "rsa" or "ec"
    key_bits: int
    spki_sha256: str
    # Loaded once here: every later step (weak-key check, the CA, the check of the
    # CA's answer) needs the key, and each load from the CSR costs a full parse of it.
    public_key: CertificatePublicKeyTypes
    ca_der: bytes  # what a CA reads: ``der``, or a copy with its attributes re-sorted
    spki_der: bytes  # the key's DER SubjectPublicKeyInfo, as the library encodes it
    # The requested extensions by OID, read once: the profile rules look several up,
    # and the library's lookup raises an exception for each one that is absent.
    extensions: Mapping[x509.ObjectIdentifier, x509.ExtensionType] = field(
        default_factory=dict)

    def extension(self, kind: type[_Ext]) -> _Ext | None:
        """The CSR's requested extension of type ``kind``, or None when it has none."""
        found = self.extensions.get(kind.oid)
        return found if found is not None and isinstance(found, kind) else None

    def identifiers(self) -> set[Identifier]:
        """The names requested, as normalised identifiers (CN included)."""
        found = {Identifier("dns", n) for n in self.dns_names}
        found |= {Identifier("ip", a) for a in self.ip_addresses}
        if self.common_name:
            found.add(identifier_for_name(self.common_name))
        return found


def bad_csr(detail: str) -> GatewayError:
    """A badCSR refusal."""
    return GatewayError(ErrorKind.BAD_CSR, detail)


def normalise_ip(value: str) -> str:
    """The canonical text of an IP address (RFC 8738 §3 compares addresses, not text)."""
    return str(ipaddress.ip_address(value))


def identifier_for_name(name: str) -> Identifier:
    """A CN's identifier: an IP address when it parses as one, else a lower-cased DNS name.

    Nothing is trimmed (no trailing dot, no spacing): the policy checks the name
    as the CSR spells it, as it checks an ACME identifier as the client sent it.
    """
    if ":" not in name and not _IPV4_TEXT.issuperset(name):
        # Neither IPv6 (which needs a colon) nor IPv4 (digits and dots only): the
        # usual DNS name skips the parser's two refusals, each a raised exception.
        return Identifier("dns", name.lower())
    try:
        return Identifier("ip", normalise_ip(name))
    except ValueError:
        return Identifier("dns", name.lower())


def parse_csr(der: bytes) -> ParsedCSR:
    """Parse a DER CSR and verify its self-signature."""
    sorted_der = None
    try:
        csr = x509.load_der_x509_csr(der)
    except x509.InvalidVersion as exc:  # not a ValueError: a version other than v1 (0)
        raise bad_csr(f"the CSR has version {exc.parsed_version}; PKCS#10 defines only "
                      "version 0 (v1)") from exc
    except ValueError as exc:
        sorted_der = attributes_sorted(der)
        if sorted_der is None:
            raise bad_csr("the CSR is not a valid DER PKCS#10 request") from exc
        csr = x509.load_der_x509_csr(sorted_der)
    key = _public_key(csr)
    kind = key_kind(type(key))
    try:
        signature_ok = _signature_valid(csr, key, der, kind) if sorted_der is None else \
            _signed_as_sent(csr, key, der)
    except Exception as exc:  # unsupported algorithms surface as various errors
        raise bad_csr(f"the CSR signature cannot be checked: {exc}") from exc
    if not signature_ok:
        raise bad_csr("the CSR signature does not verify")
    key_type, bits = _key_info(key, kind)
    try:
        extensions = {ext.oid: ext.value for ext in csr.extensions}
    except (ValueError, x509.DuplicateExtension) as exc:  # malformed, or one extension twice
        raise bad_csr(f"the CSR's extensions cannot be parsed: {exc}") from exc
    san = extensions.get(x509.SubjectAlternativeName.oid)
    dns, ips = _san_names(san) if isinstance(san, x509.SubjectAlternativeName) else ((), ())
    cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else None
    spki = _spki_der(key, der if sorted_der is None else sorted_der, kind)
    return ParsedCSR(der, csr, dns, ips, cn, key_type, bits, hashlib.sha256(spki).hexdigest(),
                     key, der if sorted_der is None else sorted_der, spki, extensions)


def _san_names(san: x509.SubjectAlternativeName) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The dNSNames (lower-cased) and iPAddresses of a subjectAltName, in one pass.

    The library makes each name exactly a DNSName or an IPAddress (or another
    GeneralName, not asked for here); comparing types spares an isinstance check
    through GeneralName's abstract metaclass per name and type.
    """
    dns: list[str] = []
    ips: list[str] = []
    for name in san:
        if type(name) is x509.DNSName:
            dns.append(name.value.lower())
        elif type(name) is x509.IPAddress:
            ips.append(str(name.value))
    return tuple(dns), tuple(ips)


def key_kind(key_class: type) -> str:
    """``ec``, ``rsa``, ``eddsa`` or ``other``: the kind of public key of ``key_class``."""
    kind = _KINDS.get(key_class)
    if kind is None:
        # The key types are abstract classes: each isinstance goes through their
        # metaclass, so the kind of each concrete class is looked up once.
        kind = _KINDS[key_class] = (
            "ec" if issubclass(key_class, ec.EllipticCurvePublicKey)
            else "rsa" if issubclass(key_class, rsa.RSAPublicKey)
            else "eddsa" if issubclass(key_class, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)
            else "other")
    return kind


_KINDS: dict[type, str] = {}


def _spki_der(key: CertificatePublicKeyTypes, der: bytes, kind: str) -> bytes:
    """The key's DER SPKI as the library encodes it.

    An EC key's is usually in the CSR already, byte for byte: taking it from
    there saves re-encoding the point. Any other form is encoded afresh.
    """
    if kind == "ec":
        found = csr_spki(der)
        curve = cast(ec.EllipticCurvePublicKey, key).curve.name
        if found is not None and is_canonical_ec_spki(found, curve):
            return found
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _public_key(csr: x509.CertificateSigningRequest) -> CertificatePublicKeyTypes:
    """The CSR's key; one the library refuses to load (an EC point off its curve or at
    infinity, an even RSA exponent) is named as such rather than as a bad signature."""
    try:
        return csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise GatewayError(ErrorKind.BAD_PUBLIC_KEY,
                           f"the CSR's public key is malformed: {str(exc).rstrip('.')}; "
                           "generate a new key") from exc


def _signature_valid(csr: x509.CertificateSigningRequest, key: PublicKeyTypes,
                     der: bytes, kind: str) -> bool:
    """``csr.is_signature_valid``, with the key (of :func:`key_kind` ``kind``) already
    loaded; ``der`` is ``csr``'s DER.

    The library's check loads the CSR's key again; an ECDSA signature (what ACME
    clients send) is checked with ``key`` instead, over the same signed bytes.
    Those are read out of ``der`` rather than encoded again by the library (the
    CSR is DER, so they are the same bytes), and the usual ECDSA algorithms are
    known by their OID without the library building the parameters.
    Anything else takes the library's own check.
    """
    if kind == "ec":
        key = cast(ec.EllipticCurvePublicKey, key)
        params = _ECDSA_BY_OID.get(csr.signature_algorithm_oid)
        if params is None:
            found = csr.signature_algorithm_parameters
            params = found if isinstance(found, ec.ECDSA) else None
        if params is not None:
            signed = csr_request_info(der)
            try:
                key.verify(csr.signature,
                           csr.tbs_certrequest_bytes if signed is None else signed, params)
            except InvalidSignature:
                return False
            return True
    return csr.is_signature_valid


def _key_info(key: object, kind: str) -> tuple[str, int]:
    if kind == "rsa":
        return "rsa", cast(rsa.RSAPublicKey, key).key_size
    if kind == "ec":
        curve = cast(ec.EllipticCurvePublicKey, key).curve
        if curve.name not in ALLOWED_CURVES:
            raise GatewayError(ErrorKind.BAD_PUBLIC_KEY,
                               f"EC curve {curve.name} is not allowed; use P-256 or P-384")
        return "ec", curve.key_size
    if kind == "eddsa":
        raise GatewayError(ErrorKind.BAD_PUBLIC_KEY, "EdDSA keys are not accepted in CSRs")
    raise GatewayError(ErrorKind.BAD_PUBLIC_KEY, "unsupported public key type in the CSR")


def check_key(parsed: ParsedCSR, key_types: tuple[str, ...], min_rsa_bits: int) -> None:
    """Refuse key types and sizes the profile does not allow, then weak keys (goodkey)."""
    if parsed.key_type not in key_types:
        raise GatewayError(ErrorKind.BAD_PUBLIC_KEY,
                           f"{parsed.key_type.upper()} keys are not allowed by this profile "
                           f"(allowed: {', '.join(k.upper() for k in key_types)})")
    if parsed.key_type == "rsa" and parsed.key_bits < min_rsa_bits:
        raise GatewayError(ErrorKind.BAD_PUBLIC_KEY,
                           f"RSA key of {parsed.key_bits} bits is too small; "
                           f"the minimum is {min_rsa_bits}")
    whose = "the CSR's public key"
    key = parsed.public_key
    if parsed.key_type == "ec":  # set for EC keys only
        curve = cast(ec.EllipticCurvePublicKey, key).curve
        # The SPKI ends with the key's bit string, which holds the uncompressed point.
        point = parsed.spki_der[-(2 * ((curve.key_size + 7) // 8) + 1):]
        goodkey.check_ec_point(curve.name, point, whose)
    else:
        goodkey.check_public_key(key, whose)


def check_names(parsed: ParsedCSR, wanted: tuple[Identifier, ...]) -> None:
    """The CSR must ask for exactly the order's identifiers: no extras, none missing."""
    asked = parsed.identifiers()
    want = set(wanted)
    extra = asked - want
    mistyped = sorted(i.value for i in extra
                      if i.type == "dns" and identifier_for_name(i.value) in want)
    if mistyped:
        raise bad_csr(f"the CSR names {', '.join(mistyped)} in a dNSName subjectAltName, but "
                      "the order has it as an ip identifier: put it in an iPAddress "
                      "subjectAltName (RFC 8738 §3)")
    if extra:
        raise bad_csr(f"the CSR names identifiers not in the order: {_shown(extra)}; "
                      f"the order has {_shown(want)}")
    if want - asked:
        raise bad_csr(f"the CSR lacks identifiers of the order: {_shown(want - asked)}; "
                      f"it names {_shown(asked) or 'none'}")


def _shown(identifiers: set[Identifier]) -> str:
    """Identifiers as ``type:value``, sorted, so a type fault shows."""
    return ", ".join(sorted(f"{i.type}:{i.value}" for i in identifiers))


def attributes_sorted(der: bytes) -> bytes | None:
    """``der`` with its SET OF attributes in DER order, if that is all that keeps it from DER.

    Some SCEP clients (strongSwan pki) put extensionRequest before a shorter
    challengePassword; the signature covers the bytes as sent, so it is checked on
    those (:func:`_signed_as_sent`) and the re-sorted copy is used for reading and
    for the CA. Anything else that is not DER (lengths, other encodings) is refused.
    """
    try:
        resorted = bytes(asn1_csr.CertificationRequest.load(der).dump(force=True))
        x509.load_der_x509_csr(resorted)
    except Exception:  # garbage: not a CSR at all
        return None
    return resorted if len(resorted) == len(der) and resorted != der else None


def der_for_ca(der: bytes) -> bytes:
    """The CSR as a CA connector can read it: re-sorted attributes where needed."""
    try:
        x509.load_der_x509_csr(der)
        return der
    except ValueError:
        return attributes_sorted(der) or der


def _signed_as_sent(csr: x509.CertificateSigningRequest, key: PublicKeyTypes,
                    der: bytes) -> bool:
    """The signature of ``csr`` (whose key is ``key``) checked over the request info
    exactly as the client sent it."""
    info = asn1_csr.CertificationRequest.load(der)["certification_request_info"].dump()
    params = csr.signature_algorithm_parameters
    hash_alg = csr.signature_hash_algorithm
    try:
        if isinstance(key, rsa.RSAPublicKey) and hash_alg is not None:
            key.verify(csr.signature, info, params, hash_alg)  # type: ignore[arg-type]
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(csr.signature, info, params)  # type: ignore[arg-type]
        else:
            return False
    except InvalidSignature:
        return False
    return True
