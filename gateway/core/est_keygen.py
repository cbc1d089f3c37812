"""Server-side key generation for EST (RFC 7030 §4.4): a key and a CSR made by the gateway.

The key is returned to the client once and never stored or logged. The CSR
made with it copies the subject and extension requests of the client's CSR and
then goes through the normal enrollment path.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.config import ProfileSettings
from gateway.core.csr import ParsedCSR

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def new_key(profile: ProfileSettings, hint: ParsedCSR) -> PrivateKey:
    """A fresh key: of the client CSR's type and size when the profile allows it."""
    key_type = hint.key_type if hint.key_type in profile.key_types else profile.key_types[0]
    if key_type == "ec":
        use_p384 = hint.key_type == "ec" and hint.key_bits == 384
        return ec.generate_private_key(ec.SECP384R1() if use_p384 else ec.SECP256R1())
    bits = max(2048, profile.min_rsa_bits)
    if hint.key_type == "rsa" and hint.key_bits >= bits:
        bits = min(hint.key_bits, 4096)
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def csr_for(key: PrivateKey, template: x509.CertificateSigningRequest) -> bytes:
    """A DER CSR signed with ``key``, asking for the template's subject and extensions."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(template.subject)
    for ext in template.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def pkcs8_der(key: PrivateKey) -> bytes:
    """The unencrypted PKCS#8 DER of ``key`` (RFC 7030 §4.4.2, application/pkcs8)."""
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
