"""Alternate chains read from PEM files: an option any connector can offer.

``alternate_chain_files = ["cross-signed.pem", ...]`` in a ``[cas.NAME]`` table:
each file holds one chain above the CA's leaves, issuer first (the issuing CA
certificate as another CA signed it, then that CA, ...).
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from connectors.secrets import OptionReader

OPTION = "alternate_chain_files"
Chain = tuple[bytes, ...]


def read_chain_files(r: OptionReader) -> tuple[Chain, ...]:
    """The chains of the ``alternate_chain_files`` option (none when absent), as DER."""
    chains = []
    for raw in r.strings(OPTION):
        try:
            certs = x509.load_pem_x509_certificates(Path(raw).read_bytes())
        except (OSError, ValueError) as exc:
            raise r.error(OPTION, f"{raw}: not a readable PEM chain ({exc})") from None
        chains.append(tuple(c.public_bytes(Encoding.DER) for c in certs))
    return tuple(chains)
