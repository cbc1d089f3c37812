"""Challenge types by name: what each may validate, in one table (RFC 8555 §8, RFC 8737,
RFC 8738).

The validation authority runs one checker per type (``http01``, ``dns01``,
``tlsalpn01``); the core offers the types an identifier may use; the config
accepts only the names here. A new challenge type is its checker module, one
line here and one in the authority's checker table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ChallengeType:
    """One challenge type and the identifiers it can prove control of."""

    name: str
    identifier_types: frozenset[str]
    wildcards: bool  # may prove control of a wildcard name (only dns-01, RFC 8555 §7.1.3)

    def proves(self, identifier_type: str, wildcard: bool) -> bool:
        """Whether this type can validate such an identifier."""
        return identifier_type in self.identifier_types and (self.wildcards or not wildcard)


HTTP_01 = ChallengeType("http-01", frozenset({"dns", "ip"}), wildcards=False)
DNS_01 = ChallengeType("dns-01", frozenset({"dns"}), wildcards=True)  # RFC 8738 §7: no IPs
TLS_ALPN_01 = ChallengeType("tls-alpn-01", frozenset({"dns", "ip"}), wildcards=False)

CHALLENGE_TYPES: Mapping[str, ChallengeType] = {t.name: t for t in (HTTP_01, DNS_01, TLS_ALPN_01)}


def offered_for(identifier_type: str, wildcard: bool, enabled: Iterable[str]) -> list[str]:
    """The enabled types that can validate such an identifier, in the configured order."""
    return [name for name in enabled
            if name in CHALLENGE_TYPES and CHALLENGE_TYPES[name].proves(identifier_type, wildcard)]
