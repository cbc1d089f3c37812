"""The chains a certificate is served with: the CA's default, then any alternates.

RFC 8555 §7.4.2: the certificate URL serves the default chain and names each
other chain with ``Link: <...>;rel="alternate"``, so a client can pick one
(certbot and lego ``--preferred-chain`` choose by the top issuer's name). A
connector offers alternates through ``connectors.base.OffersAlternateChains``;
an alternate is served only if its first certificate really issued the leaf,
so a chain left in the config after a CA key change is never handed out.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from connectors.base import Connector, OffersAlternateChains
from gateway.model.records import Certificate


def chain_pem(leaf_der: bytes, chain_der: tuple[bytes, ...]) -> str:
    """Leaf first, then the issuers, as concatenated PEM.

    The leaf has been parsed by the caller; the issuers are the same few chains
    over and over, so each distinct chain is checked and encoded once.
    """
    return ssl.DER_cert_to_PEM_cert(leaf_der) + _issuers_pem(chain_der)


@functools.lru_cache(maxsize=64)
def _issuers_pem(chain_der: tuple[bytes, ...]) -> str:
    return b"".join(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
                    for der in chain_der).decode()


def _issued_by(leaf: x509.Certificate, issuer_der: bytes) -> bool:
    try:
        leaf.verify_directly_issued_by(x509.load_der_x509_certificate(issuer_der))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


class CertificateChains:
    """Builds the PEM chains of an issued certificate, default first."""

    def __init__(self, connectors: Mapping[str, Connector]) -> None:
        self.connectors = connectors
        # Whether each connector offers alternates: an isinstance check against a
        # runtime Protocol inspects every member, too slow for each download.
        self._offers: dict[str, tuple[Connector, bool]] = {}

    def _offering(self, ca: str) -> OffersAlternateChains | None:
        connector = self.connectors.get(ca)
        known = self._offers.get(ca)
        if known is None or known[0] is not connector:
            if connector is None:
                return None
            known = self._offers[ca] = (connector,
                                        isinstance(connector, OffersAlternateChains))
        return connector if known[1] else None  # type: ignore[return-value]

    async def chains(self, cert: Certificate) -> list[str]:
        """The default chain as stored, then each alternate that fits the leaf."""
        connector = self._offering(cert.ca)
        if connector is None:
            return [cert.chain_pem]
        alternates = [chain for chain in await connector.alternate_chains() if chain]
        if not alternates:  # the usual case: no need to parse the leaf
            return [cert.chain_pem]
        leaf = x509.load_der_x509_certificate(cert.leaf_der)
        return [cert.chain_pem, *(chain_pem(cert.leaf_der, chain)
                                  for chain in alternates if _issued_by(leaf, chain[0]))]
