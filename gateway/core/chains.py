"""The chains a certificate is served with: the CA's default, then any alternates.

RFC 8555 §7.4.2: the certificate URL serves the default chain and names each
other chain with ``Link: <...>;rel="alternate"``, so a client can pick one
(certbot and lego ``--preferred-chain`` choose by the top issuer's name). A
connector offers alternates through ``connectors.base.OffersAlternateChains``;
an alternate is served only if its first certificate really issued the leaf,
so a chain left in the config after a CA key change is never handed out.
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from connectors.base import Connector, OffersAlternateChains
from gateway.core.issuance import chain_pem
from gateway.model.records import Certificate


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

    async def chains(self, cert: Certificate) -> list[str]:
        """The default chain as stored, then each alternate that fits the leaf."""
        connector = self.connectors.get(cert.ca)
        if not isinstance(connector, OffersAlternateChains):
            return [cert.chain_pem]
        leaf = x509.load_der_x509_certificate(cert.leaf_der)
        return [cert.chain_pem, *(chain_pem(cert.leaf_der, chain)
                                  for chain in await connector.alternate_chains()
                                  if chain and _issued_by(leaf, chain[0]))]
