"""The policy engine: one set of rules applied to every request, ACME or EST.

A profile (the ``[profiles.NAME]`` table) says which identifiers may be asked
for and what keys are acceptable. Refusals name the rule so that an operator
reading a client's error knows which setting to change.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re

from gateway.config import ProfileSettings
from gateway.core.models import Identifier
from gateway.errors import ErrorKind, GatewayError, Subproblem

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalise(ident: Identifier) -> Identifier:
    """Lower-case DNS names and canonicalise IP addresses; raise malformed on bad syntax."""
    if ident.type == "ip":
        try:
            return Identifier("ip", str(ipaddress.ip_address(ident.value)))
        except ValueError:
            raise _reject(ident, ErrorKind.MALFORMED, "is not an IP address") from None
    if ident.type != "dns":
        raise _reject(ident, ErrorKind.UNSUPPORTED_IDENTIFIER,
                      "has an identifier type other than dns and ip")
    name = ident.value.lower()
    _check_dns_syntax(ident, name)
    return Identifier("dns", name)


def _check_dns_syntax(ident: Identifier, name: str) -> None:
    labels = name.split(".")
    if labels[0] == "*":
        labels = labels[1:]
    if len(name) > 253 or len(labels) < 2:
        raise _reject(ident, ErrorKind.REJECTED_IDENTIFIER,
                      "is not a fully qualified domain name")
    if not all(_LABEL.match(label) for label in labels):
        raise _reject(ident, ErrorKind.MALFORMED,
                      "is not a valid DNS name (a wildcard may only be the whole leftmost label)")
    # The labels allow no ":", so only a dotted IPv4 address can still be hiding here.
    if not name.replace(".", "").isdigit():
        return
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return
    raise _reject(ident, ErrorKind.MALFORMED, "is an IP address; use an identifier of type ip")


def _reject(ident: Identifier, kind: ErrorKind, why: str) -> GatewayError:
    detail = f"{ident.type} identifier {ident.value!r} {why}"
    return GatewayError(kind, detail, (Subproblem(kind, detail, ident.type, ident.value),))


def _matches(pattern: str, value: str) -> bool:
    if pattern.startswith("re:"):
        return re.fullmatch(pattern[3:], value) is not None
    return fnmatch.fnmatchcase(value, pattern.lower())


def check_identifier(profile: ProfileSettings, ident: Identifier) -> None:
    """Refuse one (normalised) identifier the profile does not allow."""
    if ident.type == "ip" and not profile.allow_ip:
        raise _reject(ident, ErrorKind.REJECTED_IDENTIFIER,
                      f"is an IP address, which profile {profile.name!r} does not allow")
    if ident.value.startswith("*.") and not profile.allow_wildcards:
        raise _reject(ident, ErrorKind.REJECTED_IDENTIFIER,
                      f"is a wildcard, which profile {profile.name!r} does not allow")
    patterns = profile.allowed_patterns
    if patterns and not any(_matches(p, ident.value) for p in patterns):
        raise _reject(ident, ErrorKind.REJECTED_IDENTIFIER,
                      f"matches none of the allowed patterns of profile {profile.name!r}")


def check_identifiers(profile: ProfileSettings, idents: list[Identifier]) -> tuple[Identifier, ...]:
    """Normalise and check an order's identifiers; all refusals are reported together."""
    if not idents:
        raise GatewayError(ErrorKind.MALFORMED, "an order needs at least one identifier")
    if len(idents) > profile.max_identifiers:
        raise GatewayError(ErrorKind.REJECTED_IDENTIFIER,
                           f"{len(idents)} identifiers exceed the maximum of "
                           f"{profile.max_identifiers} of profile {profile.name!r}")
    out: list[Identifier] = []
    problems: list[Subproblem] = []
    for ident in idents:
        try:
            norm = normalise(ident)
            check_identifier(profile, norm)
        except GatewayError as exc:
            problems.extend(exc.subproblems)
            continue
        if norm not in out:
            out.append(norm)
    if len(problems) == 1:
        raise GatewayError(problems[0].kind, problems[0].detail, tuple(problems))
    if problems:
        detail = "; ".join(p.detail for p in problems)
        raise GatewayError(ErrorKind.REJECTED_IDENTIFIER, detail, tuple(problems))
    return tuple(out)
