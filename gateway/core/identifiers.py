"""Well-formed identifiers: the syntax every DNS name and IP address must have.

One rule set for ACME newOrder, ACME finalize and EST enrollment (a CSR's CN
and SANs), so no entry point accepts a name another refuses. Modelled on the
checks Let's Encrypt's Boulder applies before any policy:

DNS names (RFC 1035 §2.3.1, RFC 5890, RFC 8555 §7.1.4):

* ASCII only: an internationalized name is sent as IDNA A-labels (``xn--``),
  and each A-label must decode as valid IDNA 2008 and encode back to itself;
* letters, digits, hyphens and dots only: no control character, space or
  underscore anywhere (``a\\n.example.test`` is refused, not trimmed);
* at most 253 octets, labels of 1 to 63 octets, no label starting or ending
  with a hyphen, ``--`` in positions 3–4 only in an ``xn--`` label;
* no trailing dot: the identifier is the name, and ``example.com.`` is
  refused rather than silently made into another string than the one sent;
* at least two labels, and a last label (the TLD) that is not all digits;
* a wildcard only as the whole leftmost label (``*.example.com``);
* compared in lower case (the canonical form returned).

IP addresses (RFC 8738 §3): the canonical text of the address only, so that
one address has one spelling in orders, certificates and audit records.
``127.000.0.1`` (leading zeros), ``2001:DB8:0::1`` (not RFC 5952 form) and
``fe80::1%eth0`` (a zone index, meaningless off the host) are refused with the
canonical spelling named. IPv4-mapped IPv6 addresses (``::ffff:192.0.2.1``)
are refused: they name an IPv4 host, which is asked for as such.
"""

from __future__ import annotations

import ipaddress
import re
import string

import idna

from gateway.errors import ErrorKind

MAX_NAME = 253
MAX_LABEL = 63
_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "-.*")
# The whole of a well-formed name in one match: the usual case needs nothing else.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_NAME = re.compile(rf"(?:\*\.)?(?:{_LABEL}\.)+{_LABEL}")


class IdentifierRefused(Exception):
    """An identifier that is not well formed: ``kind`` and a reason for the client."""

    def __init__(self, kind: ErrorKind, why: str) -> None:
        super().__init__(why)
        self.kind = kind
        self.why = why


def _malformed(why: str) -> IdentifierRefused:
    return IdentifierRefused(ErrorKind.MALFORMED, why)


def dns_name(value: str) -> str:
    """The canonical (lower-case) form of a DNS identifier; IdentifierRefused if ill-formed."""
    if not value:
        raise _malformed("is empty")
    if not value.isascii():
        raise _malformed("contains non-ASCII characters; send an internationalized name as "
                         "IDNA A-labels (xn--...)")
    bad = next((c for c in value if c not in _NAME_CHARS), None)
    if bad is not None:
        raise _malformed(f"contains the character {bad!r}; a DNS name has only letters, "
                         "digits, hyphens and dots")
    if len(value) > MAX_NAME:
        raise _malformed(f"is longer than {MAX_NAME} octets")
    if value.endswith("."):
        raise _malformed("ends in a dot; send the name without the trailing dot")
    name = value.lower()
    labels = name.split(".")
    if labels[0] == "*":
        labels = labels[1:]
    if "*" in "".join(labels):
        raise _malformed("has a wildcard that is not the whole leftmost label (*.name)")
    if len(labels) < 2:
        raise IdentifierRefused(ErrorKind.REJECTED_IDENTIFIER,
                                "is not a fully qualified domain name")
    if not _PLAIN_NAME.fullmatch(name):
        for label in labels:
            _check_label(label)
    if "--" in name:
        for label in labels:
            _check_reserved(label)
    if labels[-1].isdigit():
        raise _numeric_tld(".".join(labels))
    return name


def _check_label(label: str) -> None:
    if not label:
        raise _malformed("has an empty label (two dots in a row, or a leading dot)")
    if len(label) > MAX_LABEL:
        raise _malformed(f"has a label longer than {MAX_LABEL} octets")
    if label.startswith("-") or label.endswith("-"):
        raise _malformed(f"has a label that starts or ends with a hyphen ({label!r})")


def _check_reserved(label: str) -> None:
    """``--`` in positions 3-4 is reserved for IDNA (RFC 5891 §4.2.3.1)."""
    if label[2:4] != "--":
        return
    if not label.startswith("xn--"):
        raise IdentifierRefused(ErrorKind.REJECTED_IDENTIFIER,
                                f"has a label with '--' in positions 3-4 ({label!r}), "
                                "reserved for IDNA A-labels (xn--)")
    try:
        valid = idna.alabel(idna.ulabel(label)).decode("ascii") == label
    except (UnicodeError, ValueError):  # idna.IDNAError is a UnicodeError
        valid = False
    if not valid:
        raise _malformed(f"has a label {label!r} that is not a valid IDNA A-label")


def _numeric_tld(name: str) -> IdentifierRefused:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return _malformed("ends in an all-numeric label; no top-level domain is numeric")
    return _malformed("is an IP address; use an identifier of type ip")


def ip_address(value: str) -> str:
    """The canonical text of an IP identifier, which must be what was sent."""
    if "%" in value:
        raise _malformed("has a zone index (%...), which means nothing off its own host")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise _malformed("is not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise _malformed(f"is an IPv4-mapped IPv6 address; ask for {address.ipv4_mapped} "
                         "as an identifier of type ip")
    canonical = str(address)
    if canonical != value:
        raise _malformed(f"is not in canonical form; write it as {canonical}")
    return canonical
