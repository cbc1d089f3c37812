"""DNS messages on the wire (RFC 1035 §4): the query the stub sends, the answer it reads.

Why not ``dns.message.from_wire``: it builds a Message, a Name per owner and an
RRset per record, and cost about half the validator's CPU per DNS question;
the stub needs far less. An answer is read here in one pass: header, the one
question (which must be ours), and every resource record of every section, so
a reply that does not parse completely (bad lengths, compression pointers that
do not point strictly backwards, labels past the end, trailing bytes) is
refused as a whole, as dnspython would refuse it. Names are kept as their
lower-cased, uncompressed wire form: DNS compares names without regard to ASCII
case (RFC 4343), and equal names then have equal bytes.

Record data is checked by type: A and AAAA must have their exact lengths, a
CNAME's target is decompressed, and every other IN record is parsed by
dnspython's rdata classes (TXT, CAA, ...), so their consumers keep dnspython's
robust parsing.
"""

from __future__ import annotations

import re
import struct
from typing import NamedTuple

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

RD_FLAG = 0x0100
QR_FLAG = 0x8000
TC_FLAG = 0x0200
CLASS_IN = 1
TYPE_A, TYPE_CNAME, TYPE_AAAA = 1, 5, 28
ADDRESS_LENGTHS = {TYPE_A: 4, TYPE_AAAA: 16}
MAX_NAME_WIRE = 255
POINTER_BITS = 0xC0
# A compression pointer to offset 12, where the question's name starts (after the header).
QUESTION_POINTER = b"\xc0\x0c"
_HEADER = struct.Struct("!6H")
_RR_FIXED = struct.Struct("!HHIH")
# A name made of plain labels only: encoded here; anything else goes through dnspython.
_LENGTH_BYTES = [bytes((n,)) for n in range(64)]  # a label's length octet, by length
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*\.?\Z")


class MalformedAnswer(Exception):
    """The reply is not a well-formed DNS message."""


class MismatchedAnswer(Exception):
    """A reply whose ID, QR bit or question is not that of the query sent."""


class Record(NamedTuple):
    """One resource record of the answer section.

    ``data`` is the record data as received, except for a CNAME, where it is
    the target name (lower-cased wire form). ``rdata`` is dnspython's parse of
    IN records other than A, AAAA and CNAME. (A named tuple: immutable, and
    built for a fraction of a frozen dataclass's cost, twice per validation.)
    """

    owner: bytes
    rdtype: int
    rdclass: int
    ttl: int
    data: bytes
    rdata: dns.rdata.Rdata | None = None


class Answer(NamedTuple):
    """What a reply says: its response code, whether it was truncated, its answer records."""

    rcode: int
    truncated: bool
    records: tuple[Record, ...]


def name_wire(name: str) -> bytes:
    """The wire form of ``name`` (absolute); ValueError when it is not a valid DNS name."""
    if _PLAIN_NAME.match(name):
        labels = name.removesuffix(".").encode("ascii").split(b".")
        wire = b"".join([_LENGTH_BYTES[len(label)] + label for label in labels]) + b"\0"
        if len(wire) <= MAX_NAME_WIRE:
            return wire
    try:  # escapes, international names, the root: dnspython's rules and errors
        return bytes(dns.name.from_text(name).to_wire() or b"")
    except dns.exception.DNSException as exc:
        raise ValueError(str(exc)) from exc


def name_text(wire: bytes) -> str:
    """A wire-form name as presentation text, with the final dot (for messages)."""
    return str(dns.name.from_wire(wire, 0)[0])


def question(name: bytes, rdtype: int) -> bytes:
    """The question section for ``name`` (wire form, lower-cased here), ``rdtype``, class IN."""
    return name.lower() + struct.pack("!2H", rdtype, CLASS_IN)


def query(qid: int, asked: bytes) -> bytes:
    """A recursive query with ID ``qid`` carrying the question section ``asked``."""
    return _HEADER.pack(qid, RD_FLAG, 1, 0, 0, 0) + asked


def parse_answer(wire: bytes, qid: int, asked: bytes) -> Answer:
    """Read a reply to the query ``qid`` whose question section was ``asked`` (see question()).

    Raises MismatchedAnswer when it answers another query, MalformedAnswer when
    it does not parse. A truncated reply (TC) is not read past its question.
    """
    if len(wire) < _HEADER.size:
        raise MalformedAnswer("shorter than a DNS header")
    rid, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    if rid != qid or not flags & QR_FLAG or qdcount != 1:
        raise MismatchedAnswer("answer does not match the question")
    if wire.startswith(asked, _HEADER.size):  # echoed byte for byte: the usual case
        pos = _HEADER.size + len(asked)
    else:  # in other letter case (or in an odd form): read as any name
        owner, pos = read_name(wire, _HEADER.size)
        if pos + 4 > len(wire):
            raise MalformedAnswer("question runs past the end")
        if owner + wire[pos : pos + 4] != asked:
            raise MismatchedAnswer("answer does not match the question")
        pos += 4
    if flags & TC_FLAG:
        return Answer(flags & 0xF, True, ())
    qname = asked[:-4]  # the question's name, lower-cased: what a pointer to it reads as
    records: list[Record] = []
    for _ in range(ancount):
        record, pos = _read_record(wire, pos, qname)
        records.append(record)
    for _ in range(nscount + arcount):
        pos = _skip_record(wire, pos)
    if pos != len(wire):
        raise MalformedAnswer("trailing bytes after the last record")
    return Answer(flags & 0xF, False, tuple(records))


def read_name(wire: bytes, pos: int) -> tuple[bytes, int]:
    """The name at ``pos``: (lower-cased uncompressed wire form, position just after it).

    Every compression pointer must point before the previous one (or before the
    name's start), so that a hostile reply cannot make the reader loop.
    """
    parts: list[bytes] = []
    size = 1
    after = -1
    floor = pos
    end = len(wire)
    while True:
        if pos >= end:
            raise MalformedAnswer("name runs past the end")
        length = wire[pos]
        if length == 0:
            break
        if length >= POINTER_BITS:
            if pos + 1 >= end:
                raise MalformedAnswer("name runs past the end")
            target = ((length & 0x3F) << 8) | wire[pos + 1]
            if target >= floor:
                raise MalformedAnswer("compression pointer does not point backwards")
            if after < 0:
                after = pos + 2
            pos = floor = target
            continue
        if length > 63:
            raise MalformedAnswer("unknown label type")
        stop = pos + 1 + length
        if stop > end:
            raise MalformedAnswer("label runs past the end")
        size += length + 1
        if size > MAX_NAME_WIRE:
            raise MalformedAnswer("name longer than 255 bytes")
        parts.append(wire[pos:stop])
        pos = stop
    parts.append(b"\0")
    return b"".join(parts).lower(), (after if after >= 0 else pos + 1)


def _read_record(wire: bytes, pos: int, qname: bytes) -> tuple[Record, int]:
    if wire.startswith(QUESTION_POINTER, pos):  # most owners point at the question's name
        owner, pos = qname, pos + 2
    else:
        owner, pos = read_name(wire, pos)
    start, stop, rdtype, rdclass, ttl = _fixed(wire, pos)
    data = wire[start:stop]
    rdata: dns.rdata.Rdata | None = None
    if rdclass == CLASS_IN:
        if rdtype == TYPE_CNAME:
            data, after = read_name(wire, start)
            if after != stop:
                raise MalformedAnswer("CNAME data has bytes after the target")
        elif rdtype in ADDRESS_LENGTHS:
            if len(data) != ADDRESS_LENGTHS[rdtype]:
                raise MalformedAnswer(f"{_type_text(rdtype)} data of {len(data)} bytes")
        else:
            rdata = _rdata(wire, start, stop, rdtype)
    return Record(owner, rdtype, rdclass, ttl, data, rdata), stop


def _rdata(wire: bytes, start: int, stop: int, rdtype: int) -> dns.rdata.Rdata:
    try:
        kind = dns.rdatatype.RdataType.make(rdtype)
        return dns.rdata.from_wire(dns.rdataclass.IN, kind, wire, start, stop - start)
    except (dns.exception.DNSException, ValueError) as exc:
        raise MalformedAnswer(f"{_type_text(rdtype)} data: {exc}") from exc


def _type_text(rdtype: int) -> str:
    return dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype))


def _skip_record(wire: bytes, pos: int) -> int:
    _, pos = read_name(wire, pos)
    return _fixed(wire, pos)[1]


def _fixed(wire: bytes, pos: int) -> tuple[int, int, int, int, int]:
    """(data start, data stop, type, class, TTL) of the record whose fixed part is at ``pos``."""
    if pos + _RR_FIXED.size > len(wire):
        raise MalformedAnswer("record runs past the end")
    rdtype, rdclass, ttl, length = _RR_FIXED.unpack_from(wire, pos)
    start = pos + _RR_FIXED.size
    stop = start + length
    if stop > len(wire):
        raise MalformedAnswer("record data runs past the end")
    return start, stop, rdtype, rdclass, ttl
