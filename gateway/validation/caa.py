"""CAA (RFC 8659) with the ACME parameters of RFC 8657.

Finding the relevant record set: query CAA at the name itself and at each
parent (never the root), all in one exchange; in climbing order, the first
non-empty set wins. CNAMEs are followed when querying each name (the DNS
client does that), but the climb runs up the original name's tree, as RFC 8659
§3 says.

Deciding: a critical property with a tag we do not know forbids issuance. For a
wildcard, ``issuewild`` properties govern when present, ``issue`` otherwise. With
no relevant property, anyone may issue. Otherwise some property must name one of
our ``caa_identities`` and satisfy its ``accounturi`` and ``validationmethods``
parameters; a value that does not parse authorizes no one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import dns.rdatatype
import dns.rdtypes.ANY.CAA

from gateway.errors import ErrorKind
from gateway.validation.attempt import Attempt, ChallengeError
from gateway.validation.dnsclient import DnsClient
from gateway.validation.netguard import parse_address

CRITICAL_FLAG = 0x80
KNOWN_TAGS = frozenset(
    {"issue", "issuewild", "iodef", "issuemail", "issuevmc", "contactemail", "contactphone"}
)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_PARAM_KEY = re.compile(r"^[A-Za-z0-9]+$")
_PARAM_VALUE = re.compile(r"^[\x21-\x3a\x3c-\x7e]*$")


@dataclass(frozen=True)
class CaaRecord:
    """One CAA property: flags, tag and value as published."""

    flags: int
    tag: str
    value: str


@dataclass(frozen=True)
class IssueValue:
    """A parsed ``issue``/``issuewild`` value: issuer domain (empty = nobody) and parameters."""

    issuer: str
    parameters: dict[str, str]


def parse_issue_value(value: str) -> IssueValue | None:
    """Parse ``issuer-domain-name; key=value; ...``; None when the value is malformed."""
    issuer, _, rest = value.partition(";")
    # A trailing dot is not in RFC 8659's grammar, but it names the same domain: accept it.
    issuer = issuer.strip().removesuffix(".")
    if issuer and not _DOMAIN.match(issuer):
        return None
    parameters: dict[str, str] = {}
    for part in rest.split(";") if rest.strip() else []:
        key, sep, val = part.strip().partition("=")
        key, val = key.strip(), val.strip()
        if (
            not sep
            or not _PARAM_KEY.match(key)
            or not _PARAM_VALUE.match(val)
            or key.lower() in parameters
        ):
            return None
        parameters[key.lower()] = val
    return IssueValue(issuer.lower(), parameters)


def evaluate(
    records: Sequence[CaaRecord],
    identities: Sequence[str],
    wildcard: bool,
    account_uri: str,
    method: str,
) -> str | None:
    """Why the relevant record set forbids issuance, or None when it permits it."""
    for record in records:
        if record.flags & CRITICAL_FLAG and record.tag.lower() not in KNOWN_TAGS:
            return f"critical CAA property {record.tag!r} is not understood, so issuance is refused"
    tag = (
        "issuewild" if wildcard and any(r.tag.lower() == "issuewild" for r in records) else "issue"
    )
    relevant = [r for r in records if r.tag.lower() == tag]
    if not relevant:
        return None
    ours = {i.lower().rstrip(".") for i in identities}
    reasons = [_refusal(r.value, ours, account_uri, method) for r in relevant]
    if any(reason is None for reason in reasons):
        return None
    return f"CAA {tag} records forbid issuance: " + "; ".join(r for r in reasons if r)


def _refusal(value: str, ours: set[str], account_uri: str, method: str) -> str | None:
    parsed = parse_issue_value(value)
    if parsed is None:
        return f"{value!r} is malformed"
    if parsed.issuer not in ours:
        return f"{value!r} does not name this CA ({', '.join(sorted(ours))})"
    wanted_account = parsed.parameters.get("accounturi")
    if wanted_account is not None and wanted_account != account_uri:
        return (
            f"{value!r} allows account {wanted_account}, not {account_uri or 'an unknown account'}"
        )
    methods = parsed.parameters.get("validationmethods")
    if methods is not None and method not in [m.strip() for m in methods.split(",")]:
        return f"{value!r} allows validation methods {methods}, not {method}"
    return None


class CaaChecker:
    """Finds the relevant CAA record set and evaluates it against this gateway's identities."""

    def __init__(self, dns: DnsClient, identities: Sequence[str]) -> None:
        self._dns = dns
        self._identities = tuple(identities)

    def applies(self, name: str) -> bool:
        """False when CAA is disabled, or for an IP identifier (CAA covers DNS names only)."""
        return bool(self._identities) and parse_address(name) is None

    async def check(
        self, name: str, wildcard: bool, account_uri: str, method: str, attempt: Attempt
    ) -> None:
        """Raise ChallengeError(caa or dns) when issuance for ``name`` is not permitted."""
        if not self.applies(name):
            return
        record = attempt.record(hostname=name, check="caa")
        try:
            found_at, records = await self._relevant(name.rstrip("."), attempt)
        except ChallengeError as exc:
            record["error"] = f"{exc.kind.value}: {exc.detail}"
            raise
        record["caaName"] = found_at
        reason = (
            evaluate(records, self._identities, wildcard, account_uri, method) if records else None
        )
        if reason is not None:
            detail = f"{name}: {reason} (records at {found_at})"
            record["error"] = f"{ErrorKind.CAA.value}: {detail}"
            raise ChallengeError(ErrorKind.CAA, detail)

    async def _relevant(self, name: str, attempt: Attempt) -> tuple[str, list[CaaRecord]]:
        """The closest non-empty record set, climbing from ``name`` (never to the root).

        Every name of the climb is asked at once, in one exchange (as Boulder
        does), and the answers are read in climbing order, so the outcome is
        that of asking one name after the other: the first non-empty set wins,
        and a failed lookup below it forbids issuance (RFC 8659 §3).
        """
        labels = name.split(".")
        candidates = [".".join(labels[start:]) for start in range(len(labels))]
        attempt.enter(ErrorKind.DNS, f"looking up CAA for {name} and its parents")
        results = await self._dns.records_many(candidates, dns.rdatatype.CAA)
        for candidate, result in zip(candidates, results, strict=True):
            if isinstance(result, ChallengeError):
                raise ChallengeError(
                    ErrorKind.DNS, f"CAA lookup failed: {result.detail}", retriable=result.retriable
                )
            records = [
                CaaRecord(
                    r.flags, r.tag.decode("ascii", "replace"), r.value.decode("utf-8", "replace")
                )
                for r in result
                if isinstance(r, dns.rdtypes.ANY.CAA.CAA)
            ]
            if records:
                return candidate, records
        return "", []
