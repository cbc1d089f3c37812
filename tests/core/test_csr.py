"""CSR parsing and the name/key checks of finalize."""

from __future__ import annotations

import ipaddress

import pytest
from asn1crypto import csr as asn1_csr
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import AttributeOID, NameOID

from connectors.der import csr_request_info
from gateway.core import csr
from gateway.errors import ErrorKind, GatewayError
from gateway.model.records import Identifier
from tests.acmeclient import make_csr
from tests.weakkeys import MALFORMED_KEYS, WEAK_KEYS, with_public_key


def test_parse_extracts_names_and_key() -> None:
    der, _ = make_csr(["A.example.com", "ip:192.0.2.9"], cn="a.example.com")
    parsed = csr.parse_csr(der)
    assert parsed.dns_names == ("a.example.com",)
    assert parsed.ip_addresses == ("192.0.2.9",)
    assert (parsed.key_type, parsed.key_bits) == ("ec", 256)
    assert parsed.identifiers() == {Identifier("dns", "a.example.com"),
                                    Identifier("ip", "192.0.2.9")}
    # The key is loaded once and carried; a DER CSR goes to the CA as it came.
    assert parsed.public_key == parsed.csr.public_key() and parsed.ca_der == der


def test_requested_extensions_are_read_once_by_type() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName("a.example.com")]), False)
           .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    parsed = csr.parse_csr(der)
    assert parsed.extension(x509.BasicConstraints) == x509.BasicConstraints(False, None)
    assert parsed.extension(x509.SubjectAlternativeName) is not None
    assert parsed.extension(x509.KeyUsage) is None


def test_only_dns_names_and_addresses_of_the_subject_alt_name_are_read() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.RFC822Name("a@example.com"), x509.DNSName("B.example.com"),
             x509.UniformResourceIdentifier("https://example.com/"),
             x509.IPAddress(ipaddress.ip_address("2001:db8::1")), x509.DNSName("c.example.com")]
    der = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName(names), False)
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    parsed = csr.parse_csr(der)
    assert parsed.dns_names == ("b.example.com", "c.example.com")
    assert parsed.ip_addresses == ("2001:db8::1",)


def test_an_extension_requested_twice_is_a_bad_csr() -> None:
    der, key = make_csr(["a.example.com"])
    req = asn1_csr.CertificationRequest.load(der)
    info = req["certification_request_info"]
    (attribute,) = info["attributes"]
    extensions = attribute["values"][0]
    extensions.append(extensions[0].copy())  # the subjectAltName once more
    info = asn1_csr.CertificationRequestInfo.load(info.dump(force=True))
    signature = key.sign(info.dump(), ec.ECDSA(hashes.SHA256()))
    twice = _tlv(0x30, info.dump() + req["signature_algorithm"].dump()
                 + _tlv(0x03, b"\0" + signature))
    with pytest.raises(GatewayError) as err:
        csr.parse_csr(twice)
    assert err.value.kind is ErrorKind.BAD_CSR
    assert "extensions cannot be parsed" in err.value.detail


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()], ids=lambda c: c.name)
def test_the_weak_key_check_reads_the_point_at_the_end_of_the_spki(
        curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve)
    parsed = csr.parse_csr(make_csr(["a.example.com"], key=key)[0])
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    assert parsed.spki_der.endswith(point)
    csr.check_key(parsed, ("ec",), 2048)


def test_bad_signature_is_refused() -> None:
    der, _ = make_csr(["a.example.com"])
    tampered = bytearray(der)
    tampered[-5] ^= 0xFF
    with pytest.raises(GatewayError) as err:
        csr.parse_csr(bytes(tampered))
    assert err.value.kind is ErrorKind.BAD_CSR


def test_not_a_csr() -> None:
    with pytest.raises(GatewayError) as err:
        csr.parse_csr(b"\x30\x03\x02\x01\x00")
    assert err.value.kind is ErrorKind.BAD_CSR


def test_key_rules() -> None:
    der, _ = make_csr(["a.example.com"], key=rsa.generate_private_key(65537, 2048))
    parsed = csr.parse_csr(der)
    csr.check_key(parsed, ("rsa", "ec"), 2048)
    with pytest.raises(GatewayError, match="minimum is 3072"):
        csr.check_key(parsed, ("rsa", "ec"), 3072)
    with pytest.raises(GatewayError, match="not allowed"):
        csr.check_key(parsed, ("ec",), 2048)


def test_names_must_match_exactly() -> None:
    parsed = csr.parse_csr(make_csr(["a.example.com", "b.example.com"])[0])
    csr.check_names(parsed, (Identifier("dns", "b.example.com"),
                             Identifier("dns", "a.example.com")))
    with pytest.raises(GatewayError, match="not in the order"):
        csr.check_names(parsed, (Identifier("dns", "a.example.com"),))


@pytest.mark.parametrize(("names", "order", "detail"), [
    (["a.example.com", "b.example.com"], [("dns", "a.example.com")],
     "not in the order: dns:b.example.com; the order has dns:a.example.com"),
    (["a.example.com"], [("dns", "a.example.com"), ("ip", "192.0.2.9")],
     "lacks identifiers of the order: ip:192.0.2.9; it names dns:a.example.com"),
    # The value is right, the type is not: say so rather than list it as extra and missing.
    (["127.0.0.1"], [("ip", "127.0.0.1")],
     "names 127.0.0.1 in a dNSName subjectAltName, but the order has it as an ip identifier"),
    (["::1"], [("ip", "::1")], "names ::1 in a dNSName subjectAltName"),
])
def test_name_refusals_name_type_and_value(names: list[str], order: list[tuple[str, str]],
                                           detail: str) -> None:
    parsed = csr.parse_csr(make_csr(names)[0])
    with pytest.raises(GatewayError) as err:
        csr.check_names(parsed, tuple(Identifier(t, v) for t, v in order))
    assert err.value.kind is ErrorKind.BAD_CSR
    assert detail in err.value.detail, err.value.detail


def test_cn_only_csr_is_accepted() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    req = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME,
                                                       "c.example.com")]))
           .sign(key, hashes.SHA256()))
    parsed = csr.parse_csr(req.public_bytes(serialization.Encoding.DER))
    csr.check_names(parsed, (Identifier("dns", "c.example.com"),))


@pytest.mark.parametrize("malformed", sorted(MALFORMED_KEYS))
def test_key_the_library_cannot_load_is_refused_as_such(malformed: str) -> None:
    make_spki, words = MALFORMED_KEYS[malformed]
    der = with_public_key(make_csr(["a.example.com"])[0], make_spki())
    with pytest.raises(GatewayError) as err:
        csr.parse_csr(der)
    assert err.value.kind is ErrorKind.BAD_PUBLIC_KEY
    assert "the CSR's public key is malformed" in err.value.detail
    assert words in err.value.detail


@pytest.mark.parametrize("weakness", sorted(WEAK_KEYS))
def test_key_rules_refuse_weak_keys(weakness: str) -> None:
    make, words = WEAK_KEYS[weakness]
    parsed = csr.parse_csr(make_csr(["a.example.com"], key=make())[0])
    with pytest.raises(GatewayError) as err:
        csr.check_key(parsed, ("rsa", "ec"), 2048)
    assert err.value.kind is ErrorKind.BAD_PUBLIC_KEY
    assert err.value.detail.startswith("the CSR's public key is weak") and words in err.value.detail


def test_a_csr_version_other_than_v1_is_a_bad_csr() -> None:
    der, _ = make_csr(["a.example.com"])
    at = der.index(b"\x02\x01\x00")  # certificationRequestInfo's version INTEGER 0
    with pytest.raises(GatewayError) as err:
        csr.parse_csr(der[:at] + b"\x02\x01\x02" + der[at + 3:])
    assert err.value.kind is ErrorKind.BAD_CSR
    assert "version 2" in err.value.detail


def test_a_trailing_dot_is_kept_for_the_policy_to_refuse() -> None:
    der, _ = make_csr(["a.example.com."], cn="b.example.com.")
    assert csr.parse_csr(der).identifiers() == {Identifier("dns", "a.example.com."),
                                                Identifier("dns", "b.example.com.")}


@pytest.mark.parametrize("name", [
    "a.example.com", "A.Example.COM", "192.0.2.9", "2001:DB8::1", "::ffff:192.0.2.9",
    "fe80::1%eth0", "192.0.2", "192.0.2.9.", "01.2.3.4", "\uff11.2.3.4", "", "[::1]",
    "1e100.net", "deadbeef", "face:b00c"])
def test_a_cn_is_an_ip_identifier_exactly_when_it_parses_as_an_address(name: str) -> None:
    """The shortcut for plain DNS names gives what the address parser decides."""
    try:
        want = Identifier("ip", csr.normalise_ip(name))
    except ValueError:
        want = Identifier("dns", name.lower())
    assert csr.identifier_for_name(name) == want


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = bytes([n]) if n < 128 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + \
        n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + body


def _attributes_reversed(signed_by_sender: bool = True) -> tuple[bytes, rsa.RSAPrivateKey]:
    """A CSR whose attributes (extensionRequest, then a shorter challengePassword) are out of
    DER order, signed over that order as strongSwan pki sends it."""
    key = rsa.generate_private_key(65537, 2048)
    good = (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s.example.net")]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("s.example.net")]), False)
            .add_attribute(AttributeOID.CHALLENGE_PASSWORD, b"pw")
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    req = asn1_csr.CertificationRequest.load(good)
    info = req["certification_request_info"]
    attrs = [a.dump() for a in info["attributes"]]
    assert len(attrs[0]) < len(attrs[1])  # DER order: the shorter first
    body = b"".join(info[f].dump() for f in ("version", "subject", "subject_pk_info"))
    cri = _tlv(0x30, body + _tlv(0xA0, attrs[1] + attrs[0]))
    signature = key.sign(cri if signed_by_sender else cri + b"x", padding.PKCS1v15(),
                         hashes.SHA256())
    der = _tlv(0x30, cri + req["signature_algorithm"].dump() + _tlv(0x03, b"\0" + signature))
    return der, key


def test_attributes_out_of_der_order_are_read_and_sorted_for_the_ca() -> None:
    der, key = _attributes_reversed()
    with pytest.raises(ValueError):
        x509.load_der_x509_csr(der)
    parsed = csr.parse_csr(der)
    assert parsed.der == der and parsed.dns_names == ("s.example.net",)
    for_ca = x509.load_der_x509_csr(csr.der_for_ca(der))
    assert for_ca.public_key().public_numbers() == key.public_key().public_numbers()
    sorted_der = for_ca.public_bytes(serialization.Encoding.DER)
    assert csr.der_for_ca(sorted_der) == sorted_der  # a DER CSR passes unchanged
    assert parsed.ca_der == sorted_der == csr.der_for_ca(der)  # what the CA gets, read once
    assert parsed.public_key == key.public_key()


def test_out_of_order_attributes_still_need_the_senders_signature() -> None:
    der, _ = _attributes_reversed(signed_by_sender=False)
    with pytest.raises(GatewayError, match="signature does not verify"):
        csr.parse_csr(der)


def test_key_kinds() -> None:
    kinds = {csr.key_kind(type(key.public_key())) for key in (
        ec.generate_private_key(ec.SECP256R1()), rsa.generate_private_key(65537, 2048))}
    assert kinds == {"ec", "rsa"}
    assert csr.key_kind(type(ed25519.Ed25519PrivateKey.generate().public_key())) == "eddsa"
    assert csr.key_kind(int) == "other"


def _tampered(der: bytes, offset: int) -> bytes:
    changed = bytearray(der)
    changed[offset] ^= 0x01
    return bytes(changed)


@pytest.mark.parametrize("case", ["ec", "ec-signature", "ec-content", "rsa", "rsa-signature"])
def test_the_signature_check_agrees_with_the_library(case: str) -> None:
    """The ECDSA check made with the already loaded key answers as is_signature_valid."""
    key = rsa.generate_private_key(65537, 2048) if case.startswith("rsa") else None
    der, _ = make_csr(["a.example.com"], key=key)
    if case.endswith("-signature"):
        der = _tampered(der, len(der) - 3)
    elif case.endswith("-content"):
        der = _tampered(der, der.index(b"a.example.com"))
    loaded = x509.load_der_x509_csr(der)
    key = loaded.public_key()
    assert csr._signature_valid(loaded, key, der, csr.key_kind(type(key))) \
        is loaded.is_signature_valid
    assert loaded.is_signature_valid is (case in ("ec", "rsa"))


@pytest.mark.parametrize("hash_alg", [hashes.SHA224(), hashes.SHA256(), hashes.SHA384(),
                                      hashes.SHA512()], ids=lambda h: h.name)
def test_every_ecdsa_hash_is_checked_over_the_signed_bytes(hash_alg: hashes.HashAlgorithm
                                                           ) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    der = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
           .sign(key, hash_alg).public_bytes(serialization.Encoding.DER))
    loaded = x509.load_der_x509_csr(der)
    assert csr._signature_valid(loaded, loaded.public_key(), der, "ec")
    # The signature is over the request info as it is in the DER, byte for byte.
    assert csr_request_info(der) == loaded.tbs_certrequest_bytes
    other = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])) \
        .sign(ec.generate_private_key(ec.SECP384R1()), hash_alg)
    assert not csr._signature_valid(loaded, other.public_key(), der, "ec")
