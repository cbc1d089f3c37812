"""The policy engine: one set of rules applied to every request, ACME or EST.

A profile (the ``[profiles.NAME]`` table) says which identifiers may be asked
for and what keys are acceptable. Refusals name the rule so that an operator
reading a client's error knows which setting to change.
"""

from __future__ import annotations

import fnmatch
import re

from gateway.config import ProfileSettings
from gateway.core import identifiers
from gateway.errors import ErrorKind, GatewayError, Subproblem
from gateway.model.records import Identifier


def normalise(ident: Identifier) -> Identifier:
    """The canonical form of a well-formed identifier (see :mod:`gateway.core.identifiers`)."""
    try:
        if ident.type == "dns":
            return Identifier("dns", identifiers.dns_name(ident.value))
        if ident.type == "ip":
            return Identifier("ip", identifiers.ip_address(ident.value))
    except identifiers.IdentifierRefused as exc:
        raise _reject(ident, exc.kind, exc.why) from None
    raise _reject(ident, ErrorKind.UNSUPPORTED_IDENTIFIER,
                  "has an identifier type other than dns and ip")


def _reject(ident: Identifier, kind: ErrorKind, why: str) -> GatewayError:
    # A refused value may be anything a client sent: the detail shows its start only.
    shown = repr(ident.value) if len(ident.value) <= 100 else f"{ident.value[:100]!r}..."
    detail = f"{ident.type} identifier {shown} {why}"
    return GatewayError(kind, detail, (Subproblem(kind, detail, ident.type, ident.value),))


def name_matches(pattern: str, value: str) -> bool:
    """Whether a name matches a pattern: a glob, or "re:" + a regular expression."""
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
    if patterns and not any(name_matches(p, ident.value) for p in patterns):
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
