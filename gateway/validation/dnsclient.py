"""DNS lookups for the validator, through an async dnspython resolver.

The resolvers are the configured ``host:port`` list (or the system's
``resolv.conf`` when the list is empty). There is no cache: a validation must see
what the applicant's DNS says now. Lookups follow CNAME chains even when the
server answers with a bare CNAME (authoritative-only servers do), and every
resolver failure is translated into a :class:`ChallengeError` of kind ``dns``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdata
import dns.rdatatype
import dns.resolver

from gateway.errors import ErrorKind
from gateway.validation.attempt import ChallengeError
from gateway.validation.netguard import IPAddress, parse_address

MAX_CNAME_HOPS = 8


class NoRecords(ChallengeError):
    """The name exists but has no records of the type asked, or does not exist at all."""

    def __init__(self, detail: str, *, nxdomain: bool = False) -> None:
        super().__init__(ErrorKind.DNS, detail)
        self.nxdomain = nxdomain


def make_resolver(
    resolvers: Sequence[tuple[str, int]], timeout: float
) -> dns.asyncresolver.Resolver:
    """An uncached async resolver using ``resolvers`` (or the system configuration)."""
    resolver = dns.asyncresolver.Resolver(configure=not resolvers)
    if resolvers:
        resolver.nameservers = [dns.nameserver.Do53Nameserver(h, p) for h, p in resolvers]
    # One slow server must not use up the whole attempt: give each try a slice of it.
    resolver.timeout = min(2.0, timeout)
    resolver.lifetime = timeout
    resolver.cache = None
    return resolver


class DnsClient:
    """The lookups challenges need: addresses, TXT and CAA, with errors a person can read."""

    def __init__(self, resolver: dns.asyncresolver.Resolver) -> None:
        self._resolver = resolver

    async def records(self, name: str, rdtype: dns.rdatatype.RdataType) -> list[dns.rdata.Rdata]:
        """Every record of ``rdtype`` at ``name`` (after CNAMEs); raises NoRecords when none."""
        qname = _absolute(name)
        for _ in range(MAX_CNAME_HOPS + 1):
            answer = await self._query(qname, rdtype, name)
            if answer.rrset is not None:
                return list(answer.rrset)
            if answer.canonical_name == qname:
                raise NoRecords(f"no {rdtype.name} record found for {name}")
            # A bare CNAME: the server left resolving the target to us.
            qname = answer.canonical_name
        raise ChallengeError(
            ErrorKind.DNS, f"CNAME chain for {name} is longer than {MAX_CNAME_HOPS}"
        )

    async def addresses(self, name: str) -> list[IPAddress]:
        """The IPv6 then IPv4 addresses of ``name``; one family may fail if the other answers."""
        results = await asyncio.gather(
            self.records(name, dns.rdatatype.AAAA),
            self.records(name, dns.rdatatype.A),
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
    ) -> dns.resolver.Answer:
        what = f"{rdtype.name} lookup for {shown}"
        try:
            return await self._resolver.resolve(
                qname, rdtype, raise_on_no_answer=False, search=False
            )
        except dns.resolver.NXDOMAIN as exc:
            raise NoRecords(f"{what}: no such domain (NXDOMAIN)", nxdomain=True) from exc
        except dns.exception.Timeout as exc:
            raise ChallengeError(ErrorKind.DNS, f"{what}: timed out", retriable=True) from exc
        except dns.resolver.NoNameservers as exc:
            detail = f"{what}: no resolver gave a usable answer (SERVFAIL, REFUSED or malformed)"
            raise ChallengeError(ErrorKind.DNS, detail, retriable=True) from exc
        except dns.exception.DNSException as exc:
            raise ChallengeError(ErrorKind.DNS, f"{what}: {exc}", retriable=True) from exc


def _absolute(name: str) -> dns.name.Name:
    try:
        return dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        raise ChallengeError(ErrorKind.MALFORMED, f"{name!r} is not a valid DNS name") from exc
