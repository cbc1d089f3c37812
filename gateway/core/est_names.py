"""Names of EST requests: the identifiers a CSR or certificate asks for, subject comparison.

Re-enrollment compares the new CSR with the certificate being renewed "after
normalising" (RFC 7030 §4.2.2): clients copy the old subject and extensions, but
may re-encode strings or change case and spacing.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from gateway.core.csr import ParsedCSR, identifier_for_name
from gateway.model.records import Identifier


def identifiers_of(source: ParsedCSR | x509.Certificate) -> list[Identifier]:
    """The names requested or certified: the CN first, then DNS and IP SANs (RFC 7030 §4.2.1)."""
    if isinstance(source, ParsedCSR):
        cn, dns, ips = source.common_name, source.dns_names, source.ip_addresses
    else:
        cn, dns, ips = _certificate_names(source)
    out = [identifier_for_name(cn)] if cn else []
    out += [Identifier("dns", n) for n in dns]
    out += [Identifier("ip", a) for a in ips]
    return list(dict.fromkeys(out))


def _certificate_names(cert: x509.Certificate) -> tuple[str | None, tuple[str, ...],
                                                        tuple[str, ...]]:
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return cn, (), ()
    dns = tuple(n.lower() for n in san.get_values_for_type(x509.DNSName))
    return cn, dns, tuple(str(a) for a in san.get_values_for_type(x509.IPAddress))


def normalised_subject(name: x509.Name) -> list[tuple[str, str]]:
    """Each attribute as (OID, case-folded value with spacing collapsed), in order."""
    return [(attr.oid.dotted_string, " ".join(str(attr.value).split()).casefold())
            for attr in name]


def same_subject(a: x509.Name, b: x509.Name) -> bool:
    """Equal distinguished names after normalising case, spacing and string types."""
    return normalised_subject(a) == normalised_subject(b)
