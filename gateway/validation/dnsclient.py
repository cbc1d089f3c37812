"""DNS lookups for the validator: addresses, TXT and CAA, with readable errors.

The resolvers are the configured ``host:port`` list (or the system's
``resolv.conf`` when the list is empty), asked through :mod:`dnswire`. There is
no cache: a validation must see what the applicant's DNS says now. Lookups
follow CNAME chains even when the server answers with a bare CNAME (as
authoritative-only servers do), and every failure becomes a
:class:`ChallengeError` of kind ``dns``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from gateway.errors import ErrorKind
from gateway.validation.attempt import ChallengeError
from gateway.validation.dnswire import StubResolver, system_nameservers
from gateway.validation.netguard import IPAddress, parse_address

MAX_CNAME_HOPS = 8


class NoRecords(ChallengeError):
    """The name exists but has no records of the type asked, or does not exist at all."""

    def __init__(self, detail: str, *, nxdomain: bool = False) -> None:
        super().__init__(ErrorKind.DNS, detail)
        self.nxdomain = nxdomain


def make_resolver(resolvers: Sequence[tuple[str, int]], timeout: float) -> StubResolver:
    """A stub asking ``resolvers`` (or the system's); each server gets a slice of ``timeout``."""
    nameservers = tuple(resolvers) or system_nameservers()
    # Half the attempt at most, so that a server whose answer was lost can be asked again.
    return StubResolver(nameservers, try_seconds=min(2.0, timeout / 2))


class DnsClient:
    """The lookups challenges need: addresses, TXT and CAA, with errors a person can read."""

    def __init__(self, resolver: StubResolver) -> None:
        self._resolver = resolver

    async def records(
        self, name: str, rdtype: dns.rdatatype.RdataType, qname: dns.name.Name | None = None
    ) -> list[dns.rdata.Rdata]:
        """Every record of ``rdtype`` at ``name`` (after CNAMEs); raises NoRecords when none."""
        qname = qname or _absolute(name)
        for _ in range(MAX_CNAME_HOPS + 1):
            answer = await self._query(qname, rdtype, name)
            rrset, target = _follow(answer, qname, rdtype)
            if rrset is not None:
                return list(rrset)
            if answer.rcode() == dns.rcode.NXDOMAIN:
                shown = f"{name} (via {target})" if target != qname else name
                detail = f"{rdtype.name} lookup for {shown}: no such domain (NXDOMAIN)"
                raise NoRecords(detail, nxdomain=True)
            if target == qname:
                raise NoRecords(f"no {rdtype.name} record found for {name}")
            # A bare CNAME: the server left resolving the target to us.
            qname = target
        raise ChallengeError(
            ErrorKind.DNS, f"CNAME chain for {name} is longer than {MAX_CNAME_HOPS}"
        )

    async def addresses(self, name: str) -> list[IPAddress]:
        """The IPv6 then IPv4 addresses of ``name``; one family may fail if the other answers."""
        qname = _absolute(name)
        results = await asyncio.gather(
            self.records(name, dns.rdatatype.AAAA, qname),
            self.records(name, dns.rdatatype.A, qname),
            return_exceptions=True,
        )
        found: list[IPAddress] = []
        errors: list[ChallengeError] = []
        for result in results:
            if isinstance(result, ChallengeError):
                errors.append(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                found.extend(a for a in (parse_address(r.to_text()) for r in result) if a)
        if found:
            return found
        hard = [e for e in errors if not isinstance(e, NoRecords)]
        if hard:
            raise hard[0]
        if errors and all(isinstance(e, NoRecords) and e.nxdomain for e in errors):
            raise NoRecords(f"{name}: no such domain (NXDOMAIN)", nxdomain=True)
        raise NoRecords(f"no A or AAAA record found for {name}")

    async def _query(
        self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, shown: str
    ) -> dns.message.Message:
        try:
            return await self._resolver.query(qname, rdtype)
        except ChallengeError as exc:
            detail = f"{rdtype.name} lookup for {shown} failed: {exc.detail}"
            raise ChallengeError(ErrorKind.DNS, detail, retriable=True) from exc


def _follow(
    answer: dns.message.Message, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> tuple[dns.rrset.RRset | None, dns.name.Name]:
    """The answer's RRset for ``qname`` after the CNAMEs it holds, and the last name reached.

    Only records in the IN class count. Done by hand because dnspython's
    resolve_chaining cost a fifth of the validator's DNS time under load.
    """
    name = qname
    for _ in range(MAX_CNAME_HOPS + 1):
        alias: dns.name.Name | None = None
        for rrset in answer.answer:
            if rrset.rdclass != dns.rdataclass.IN or rrset.name != name:
                continue
            if rrset.rdtype == rdtype:
                return rrset, name
            if rrset.rdtype == dns.rdatatype.CNAME and len(rrset):
                alias = rrset[0].target
        if alias is None or alias == name:
            return None, name
        name = alias
    return None, name


def _absolute(name: str) -> dns.name.Name:
    try:
        return dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        raise ChallengeError(ErrorKind.MALFORMED, f"{name!r} is not a valid DNS name") from exc
