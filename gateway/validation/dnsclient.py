"""DNS lookups for the validator: addresses, TXT and CAA, with readable errors.

The resolvers are the configured ``host:port`` list (or the system's
``resolv.conf`` when the list is empty), asked through :mod:`dnswire`. There is
no cache: a validation must see what the applicant's DNS says now. Lookups
follow CNAME chains even when the server answers with a bare CNAME (as
authoritative-only servers do), and every failure becomes a
:class:`ChallengeError` of kind ``dns``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import dns.rcode
import dns.rdata
import dns.rdatatype

from gateway.errors import ErrorKind
from gateway.validation.attempt import ChallengeError
from gateway.validation.dnsmessage import (
    TYPE_CNAME,
    Answer,
    Record,
    name_text,
    name_wire,
    question,
)
from gateway.validation.dnswire import StubResolver, system_nameservers
from gateway.validation.netguard import IPAddress

MAX_CNAME_HOPS = 8
# IPv6 first: the order addresses are returned in, and connections tried.
ADDRESS_TYPES = (dns.rdatatype.AAAA, dns.rdatatype.A)
CLASS_IN = 1


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

    async def records(self, name: str, rdtype: dns.rdatatype.RdataType) -> list[dns.rdata.Rdata]:
        """Every record of ``rdtype`` at ``name`` (after CNAMEs); raises NoRecords when none.

        For types other than A, AAAA and CNAME (whose data :meth:`addresses` reads).
        """
        records = await self._records(name, rdtype, _absolute(name))
        return [r.rdata for r in records if r.rdata is not None]

    async def records_many(
        self, names: Sequence[str], rdtype: dns.rdatatype.RdataType
    ) -> list[list[dns.rdata.Rdata] | ChallengeError]:
        """For each name, its records of ``rdtype`` (after CNAMEs), or the failed lookup's error.

        An empty list when the name has none or does not exist. The questions
        go out together, on one socket (see StubResolver.query_many).
        """
        qnames = [_absolute(name) for name in names]
        firsts = await self._resolver.query_many([question(q, rdtype) for q in qnames])
        results: list[list[dns.rdata.Rdata] | ChallengeError] = []
        for name, qname, first in zip(names, qnames, firsts, strict=True):
            try:
                if isinstance(first, ChallengeError):
                    raise _lookup_failed(rdtype, name, first)
                found, reached = _follow(first, qname, rdtype)
                if not found and reached != qname and first.rcode != dns.rcode.NXDOMAIN:
                    found = await self._records(name, rdtype, qname, first)  # a bare CNAME
            except NoRecords:
                found = []
            except ChallengeError as exc:
                results.append(exc)
                continue
            results.append([r.rdata for r in found if r.rdata is not None])
        return results

    async def addresses(self, name: str) -> list[IPAddress]:
        """The IPv6 then IPv4 addresses of ``name``; one family may fail if the other answers.

        Both questions go out together, on one socket (see StubResolver.query_many).
        """
        qname = _absolute(name)
        firsts = await self._resolver.query_many([question(qname, t) for t in ADDRESS_TYPES])
        return _direct_addresses(firsts, qname) or await self._addresses(name, qname, firsts)

    async def _addresses(
        self, name: str, qname: bytes, firsts: list[Answer | ChallengeError]
    ) -> list[IPAddress]:
        """Addresses when the first answers were not enough: CNAMEs to ask, or errors to tell."""
        found: list[IPAddress] = []
        errors: list[ChallengeError] = []
        for rdtype, first in zip(ADDRESS_TYPES, firsts, strict=True):
            try:
                if isinstance(first, ChallengeError):
                    raise _lookup_failed(rdtype, name, first)
                records = await self._records(name, rdtype, qname, first)
            except ChallengeError as exc:
                errors.append(exc)
            else:
                found.extend(ipaddress.ip_address(r.data) for r in records)
        if found:
            return found
        hard = [e for e in errors if not isinstance(e, NoRecords)]
        if hard:
            raise hard[0]
        if errors and all(isinstance(e, NoRecords) and e.nxdomain for e in errors):
            raise NoRecords(f"{name}: no such domain (NXDOMAIN)", nxdomain=True)
        raise NoRecords(f"no A or AAAA record found for {name}")

    async def _records(
        self,
        name: str,
        rdtype: dns.rdatatype.RdataType,
        qname: bytes,
        first: Answer | None = None,
    ) -> list[Record]:
        """The records of ``rdtype`` at ``qname``; ``first`` is its answer when already asked."""
        for _ in range(MAX_CNAME_HOPS + 1):
            answer = first or await self._query(qname, rdtype, name)
            first = None
            found, target = _follow(answer, qname, rdtype)
            if found:
                return found
            if answer.rcode == dns.rcode.NXDOMAIN:
                shown = f"{name} (via {name_text(target)})" if target != qname else name
                detail = f"{rdtype.name} lookup for {shown}: no such domain (NXDOMAIN)"
                raise NoRecords(detail, nxdomain=True)
            if target == qname:
                raise NoRecords(f"no {rdtype.name} record found for {name}")
            # A bare CNAME: the server left resolving the target to us.
            qname = target
        raise ChallengeError(
            ErrorKind.DNS, f"CNAME chain for {name} is longer than {MAX_CNAME_HOPS}"
        )

    async def _query(self, qname: bytes, rdtype: dns.rdatatype.RdataType, shown: str) -> Answer:
        try:
            return await self._resolver.query(question(qname, rdtype))
        except ChallengeError as exc:
            raise _lookup_failed(rdtype, shown, exc) from exc


def _lookup_failed(
    rdtype: dns.rdatatype.RdataType, shown: str, exc: ChallengeError
) -> ChallengeError:
    """The resolver's failure, saying which lookup failed (every such failure is retried)."""
    detail = f"{rdtype.name} lookup for {shown} failed: {exc.detail}"
    return ChallengeError(ErrorKind.DNS, detail, retriable=True)


def _direct_addresses(firsts: list[Answer | ChallengeError], qname: bytes) -> list[IPAddress]:
    """The addresses the first answers hold, when no other question could add to them.

    Empty when there are none, or when one family's answer is a bare CNAME still
    to be followed (so that, as before, every family is complete).
    """
    found: list[IPAddress] = []
    for rdtype, first in zip(ADDRESS_TYPES, firsts, strict=True):
        if isinstance(first, ChallengeError):
            continue
        records, reached = _follow(first, qname, rdtype)
        if not records and reached != qname and first.rcode != dns.rcode.NXDOMAIN:
            return []
        # A and AAAA data have exactly 4 and 16 bytes (dnsmessage checks).
        kind = ipaddress.IPv6Address if rdtype == dns.rdatatype.AAAA else ipaddress.IPv4Address
        found.extend([kind(r.data) for r in records])
    return found


def _follow(answer: Answer, qname: bytes, rdtype: int) -> tuple[list[Record], bytes]:
    """The answer's records of ``rdtype`` for ``qname`` after its CNAMEs, and the name reached.

    Only records in the IN class count; names are compared in their lower-cased
    wire form (see dnsmessage).
    """
    name = qname
    for _ in range(MAX_CNAME_HOPS + 1):
        alias: bytes | None = None
        found: list[Record] = []
        for record in answer.records:
            if record.rdclass != CLASS_IN or record.owner != name:
                continue
            if record.rdtype == rdtype:
                found.append(record)
            elif record.rdtype == TYPE_CNAME and alias is None:
                alias = record.data
        if found:
            return found, name
        if alias is None or alias == name:
            return [], name
        name = alias
    return [], name


def _absolute(name: str) -> bytes:
    """``name`` in the lower-cased wire form that answers are compared in."""
    try:
        return name_wire(name).lower()
    except ValueError as exc:
        raise ChallengeError(ErrorKind.MALFORMED, f"{name!r} is not a valid DNS name") from exc
