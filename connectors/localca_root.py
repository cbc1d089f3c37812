"""The offline root of a two-tier local CA, as step-ca sets one up.

A new local CA is two certificates: a root, whose key signs nothing but the
issuing CA's certificate, and the online issuing CA that signs leaves, CRLs
and OCSP answers. The root key is kept apart from the issuing key — another
file (``root.key.pem``) or another token object (``<key_label>-root``) — and
is opened only while the hierarchy is made. Clients get the leaf and the
issuing CA; the root is a trust anchor they install, never part of a chain.

Files: ``root.pem`` (the root certificate), ``ca.pem`` (issuing CA, then the
root, so that ``cacerts`` and ``ca info`` show the whole hierarchy). A CA
directory made before (one self-signed CA in ``ca.pem``) keeps working as it
is: ``hierarchy`` only decides what a new CA is made as.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from connectors.localca_certs import ca_name, issuing_ca, self_signed_ca
from connectors.localca_keys import FileKeyBackend, KeyBackend, hash_for
from connectors.localca_settings import LocalCASettings

ROOT_CERT = "root.pem"
ROOT_KEY = "root.key.pem"


def root_backend(settings: LocalCASettings) -> KeyBackend:
    """Where the root key lives: beside the issuing key, as a separate file or token object."""
    if settings.pkcs11 is not None:
        from connectors.pkcs11_keys import Pkcs11KeyBackend

        token = replace(settings.pkcs11, key_label=settings.pkcs11.key_label + "-root")
        backend: KeyBackend = Pkcs11KeyBackend(token, settings.key_type,
                                               lock_path=settings.dir / "pkcs11.lock")
        return backend
    return FileKeyBackend(settings.dir / ROOT_KEY, settings.key_type)


async def make_hierarchy(settings: LocalCASettings, issuing: KeyBackend,
                         now: datetime) -> list[x509.Certificate]:
    """Create (or reuse) the root key, a root certificate and the issuing CA's certificate.

    Returns ``[issuing CA, root]`` and writes ``root.pem``; the caller writes ``ca.pem``.
    """
    hash_alg = hash_for(settings.key_type)
    subject = ca_name(settings.common_name, settings.organization)
    root_subject = ca_name(settings.root_common_name or f"{settings.common_name} Root",
                           settings.organization)
    root_keys = root_backend(settings)
    await root_keys.open(create=True)
    try:
        key, public = root_keys.signing_key(), root_keys.public_key()
        root = await root_keys.run(lambda: self_signed_ca(
            key, public, root_subject, now, settings.root_validity, hash_alg, path_length=1))
        cert = await root_keys.run(lambda: issuing_ca(
            key, root, issuing.public_key(), subject, now, settings.ca_validity, hash_alg))
    finally:
        await root_keys.close()
    (settings.dir / ROOT_CERT).write_bytes(root.public_bytes(Encoding.PEM))
    return [cert, root]


async def new_ca_certificates(settings: LocalCASettings, issuing: KeyBackend,
                              now: datetime) -> list[x509.Certificate]:
    """The certificates of a new CA, issuing CA first: two-tier, or one self-signed CA."""
    if settings.hierarchy == "two-tier":
        return await make_hierarchy(settings, issuing, now)
    key, public = issuing.signing_key(), issuing.public_key()
    subject = ca_name(settings.common_name, settings.organization)
    hash_alg = hash_for(settings.key_type)
    return [await issuing.run(lambda: self_signed_ca(
        key, public, subject, now, settings.ca_validity, hash_alg))]


def chain_pem(certs: list[x509.Certificate]) -> bytes:
    """``ca.pem``: the CA's certificate, then the chain above it."""
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)
