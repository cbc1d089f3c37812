"""CMS EnvelopedData for SCEP (RFC 8894 §3.2.2): the encrypted inner part of a pkiMessage.

A request's inner content (a CSR, an IssuerAndSubject, ...) is encrypted to the
RA certificate; a successful CertRep's certificates are encrypted back to the
requester's signing certificate. Only key transport with RSA (PKCS#1 v1.5, the
one SCEP clients use) and CBC content ciphers are offered: AES always, triple
DES only where a label enables ``legacy_algorithms`` for old devices.

Every decryption failure raises the same :class:`EnvelopeError`, whatever the
cause (wrong key, bad RSA padding, bad CBC padding): a client must not learn
which step failed, or the answers would be a padding oracle.
"""

from __future__ import annotations

import os

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import load_der_public_key

# Content ciphers by asn1crypto's name: (key bytes, legacy)
CIPHERS = {"aes128_cbc": (16, False), "aes192_cbc": (24, False), "aes256_cbc": (32, False),
           "tripledes_3key": (24, True)}


class EnvelopeError(Exception):
    """The EnvelopedData could not be read or decrypted (never says which step failed)."""


def _cipher(name: str, key: bytes, iv: bytes) -> Cipher[modes.CBC]:
    algorithm = TripleDES(key) if name == "tripledes_3key" else algorithms.AES(key)
    return Cipher(algorithm, modes.CBC(iv))


def _block_bits(name: str) -> int:
    return 64 if name == "tripledes_3key" else 128


def open_envelope(der: bytes, key: rsa.RSAPrivateKey, legacy: bool) -> tuple[bytes, str]:
    """The plaintext of an EnvelopedData for ``key``, and its cipher name."""
    try:
        info = cms.ContentInfo.load(der)
        if info["content_type"].native != "enveloped_data":
            raise EnvelopeError("the inner content is not EnvelopedData")
        env = info["content"]
        encrypted = env["encrypted_content_info"]
        cipher_name = encrypted["content_encryption_algorithm"]["algorithm"].native
        if cipher_name not in CIPHERS or (CIPHERS[cipher_name][1] and not legacy):
            raise EnvelopeError(f"content cipher {cipher_name} is not offered")
        iv = encrypted["content_encryption_algorithm"].encryption_iv
        ciphertext = encrypted["encrypted_content"].native
        return _decrypt(env, key, cipher_name, iv, ciphertext), cipher_name
    except EnvelopeError:
        raise
    except Exception:  # a malformed structure: one answer for every cause
        raise EnvelopeError("the EnvelopedData is malformed") from None


def _decrypt(env: cms.EnvelopedData, key: rsa.RSAPrivateKey, cipher_name: str, iv: bytes,
             ciphertext: bytes) -> bytes:
    for recipient in env["recipient_infos"]:
        if recipient.name != "ktri":
            continue
        try:
            cek = key.decrypt(recipient.chosen["encrypted_key"].native, padding.PKCS1v15())
            if len(cek) != CIPHERS[cipher_name][0]:
                continue
            decryptor = _cipher(cipher_name, cek, iv).decryptor()
            padded = decryptor.update(ciphertext) + decryptor.finalize()
            unpadder = sym_padding.PKCS7(_block_bits(cipher_name)).unpadder()
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            continue
    raise EnvelopeError("the EnvelopedData is not encrypted to this RA's key")


def seal(plaintext: bytes, recipient_der: bytes, cipher_name: str = "aes256_cbc") -> bytes:
    """An EnvelopedData (as ContentInfo DER) of ``plaintext`` for the RSA key of a certificate."""
    cert = asn1_x509.Certificate.load(recipient_der)
    public = load_der_public_key(cert.public_key.dump())
    if not isinstance(public, rsa.RSAPublicKey):
        raise EnvelopeError("SCEP encrypts only to RSA keys; the signer certificate has another")
    key_bytes = CIPHERS[cipher_name][0]
    cek, iv = os.urandom(key_bytes), os.urandom(_block_bits(cipher_name) // 8)
    padder = sym_padding.PKCS7(_block_bits(cipher_name)).padder()
    encryptor = _cipher(cipher_name, cek, iv).encryptor()
    ciphertext = encryptor.update(padder.update(plaintext) + padder.finalize()) \
        + encryptor.finalize()
    recipient = cms.KeyTransRecipientInfo({
        "version": "v0",
        "rid": cms.RecipientIdentifier(name="issuer_and_serial_number", value={
            "issuer": cert.issuer, "serial_number": cert.serial_number}),
        "key_encryption_algorithm": {"algorithm": "rsaes_pkcs1v15"},
        "encrypted_key": public.encrypt(cek, padding.PKCS1v15())})
    enveloped = cms.EnvelopedData({
        "version": "v0",
        "recipient_infos": [cms.RecipientInfo(name="ktri", value=recipient)],
        "encrypted_content_info": {
            "content_type": "data",
            "content_encryption_algorithm": algos.EncryptionAlgorithm({
                "algorithm": cipher_name, "parameters": core.OctetString(iv)}),
            "encrypted_content": ciphertext}})
    return bytes(cms.ContentInfo({"content_type": "enveloped_data",
                                  "content": enveloped}).dump())
