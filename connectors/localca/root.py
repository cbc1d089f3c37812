"""The offline root of a two-tier local CA, as step-ca sets one up.

A new local CA is two certificates: a root, whose key signs nothing but the
issuing CA's certificate, and the online issuing CA that signs leaves, CRLs
and OCSP answers. The root key is kept apart from the issuing key — another
file (``root.key.pem``) or another token object (``<key_label>-root``) — and
is opened only while the hierarchy is made. Clients get the leaf and the
issuing CA; the root is a trust anchor they install, never part of a chain.

Files: ``root.pem`` (the root certificate), ``root.crl.der`` (the root's CRL,
the only other thing its key signs; named in the issuing CA's certificate and
served at ``/pkix/<ca>/root-crl``; ``acme-gateway ca root-crl`` signs it anew
before ``root_crl_days`` run out), ``ca.pem`` (issuing CA, then the root, so
that ``cacerts`` and ``ca info`` show the whole hierarchy). A CA
directory made before (one self-signed CA in ``ca.pem``) keeps working as it
is: ``hierarchy`` only decides what a new CA is made as.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from connectors.base import CAConfigError
from connectors.localca.certs import CAIdentity, build_crl, ca_name, issuing_ca, self_signed_ca
from connectors.localca.keys import FileKeyBackend, KeyBackend, hash_for
from connectors.localca.settings import LocalCASettings

ROOT_CERT = "root.pem"
ROOT_KEY = "root.key.pem"
ROOT_CRL = "root.crl.der"


def root_backend(settings: LocalCASettings) -> KeyBackend:
    """Where the root key lives: beside the issuing key, as a separate file or token object."""
    if settings.pkcs11 is not None:
        from connectors.localca.pkcs11_keys import Pkcs11KeyBackend

        token = replace(settings.pkcs11, key_label=settings.pkcs11.key_label + "-root")
        backend: KeyBackend = Pkcs11KeyBackend(token, settings.key_type,
                                               lock_path=settings.dir / "pkcs11.lock")
        return backend
    return FileKeyBackend(settings.dir / ROOT_KEY, settings.key_type)


async def make_hierarchy(settings: LocalCASettings, name: str, issuing: KeyBackend,
                         now: datetime) -> list[x509.Certificate]:
    """Create (or reuse) the root key, a root certificate and the issuing CA's certificate.

    Returns ``[issuing CA, root]`` and writes ``root.pem`` and the root's first CRL;
    the caller writes ``ca.pem``.
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
            key, root, issuing.public_key(), subject, now, settings.ca_validity, hash_alg,
            settings.root_crl_url(name)))
        crl = await _root_crl(settings, root_keys, root, 1, now)
    finally:
        await root_keys.close()
    (settings.dir / ROOT_CERT).write_bytes(root.public_bytes(Encoding.PEM))
    (settings.dir / ROOT_CRL).write_bytes(crl)
    return [cert, root]


async def _root_crl(settings: LocalCASettings, root_keys: KeyBackend, root: x509.Certificate,
                    number: int, now: datetime) -> bytes:
    """The root's CRL: it lists no issuing CA as revoked (there is one, and it is good)."""
    identity = CAIdentity.of(root, (), hash_for(settings.key_type))
    key = root_keys.signing_key()
    crl = await root_keys.run(lambda: build_crl(
        key, identity, (), number, now, now + settings.root_crl_validity))
    return crl.public_bytes(Encoding.DER)


async def renew_root_crl(settings: LocalCASettings, now: datetime) -> Path:
    """Sign the root's CRL again (the root key is opened for that alone); its path."""
    try:
        root = x509.load_pem_x509_certificate((settings.dir / ROOT_CERT).read_bytes())
    except (OSError, ValueError) as exc:
        raise CAConfigError(f"no root certificate in {settings.dir / ROOT_CERT} ({exc}); only a "
                            "two-tier CA has a root CRL") from exc
    target = settings.dir / ROOT_CRL
    number = 1
    with contextlib.suppress(OSError, ValueError, x509.ExtensionNotFound):
        old = x509.load_der_x509_crl(target.read_bytes())
        number = old.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
    root_keys = root_backend(settings)
    await root_keys.open(create=False)
    try:
        target.write_bytes(await _root_crl(settings, root_keys, root, number, now))
    finally:
        await root_keys.close()
    return target


async def new_ca_certificates(settings: LocalCASettings, name: str, issuing: KeyBackend,
                              now: datetime) -> list[x509.Certificate]:
    """The certificates of a new CA, issuing CA first: two-tier, or one self-signed CA."""
    if settings.hierarchy == "two-tier":
        return await make_hierarchy(settings, name, issuing, now)
    key, public = issuing.signing_key(), issuing.public_key()
    subject = ca_name(settings.common_name, settings.organization)
    hash_alg = hash_for(settings.key_type)
    return [await issuing.run(lambda: self_signed_ca(
        key, public, subject, now, settings.ca_validity, hash_alg))]


def chain_pem(certs: list[x509.Certificate]) -> bytes:
    """``ca.pem``: the CA's certificate, then the chain above it."""
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)
