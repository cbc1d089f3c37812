"""The DNS wire reader: replies built by dnspython read back, hostile replies refused."""

from __future__ import annotations

import struct

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdtypes.ANY.CAA
import dns.rdtypes.ANY.TXT
import dns.rrset
import pytest

from gateway.validation.dnsmessage import (
    TYPE_A,
    TYPE_AAAA,
    TYPE_CNAME,
    MalformedAnswer,
    MismatchedAnswer,
    name_text,
    name_wire,
    parse_answer,
    query,
    question,
    read_name,
)

QID = 0x1234
TYPE_TXT, TYPE_CAA = 16, 257


def asked(name: str = "www.example.test", rdtype: int = TYPE_A) -> bytes:
    return question(name_wire(name), rdtype)


def reply(
    name: str = "www.example.test",
    rdtype: str = "A",
    records: list[tuple[str, str, list[str]]] | None = None,
    *,
    qid: int = QID,
) -> bytes:
    """A dnspython-built reply to the query QID for (name, rdtype) with the given records."""
    request = dns.message.make_query(name, rdtype)
    request.id = qid
    response = dns.message.make_response(request)
    for owner, kind, values in records or []:
        owner_name = dns.name.from_text(owner)
        response.answer.append(dns.rrset.from_text_list(owner_name, 300, "IN", kind, values))
    return bytes(response.to_wire())


def test_query_is_a_recursive_question_for_the_name() -> None:
    wire = query(QID, asked())
    message = dns.message.from_wire(wire)
    assert message.id == QID and message.flags & dns.flags.RD
    assert message.question[0].name == dns.name.from_text("www.example.test")


@pytest.mark.parametrize(
    "name",
    ["www.example.test", "www.example.test.", "a_b.x-y.test", "xn--bcher-kva.test", "é.test"],
)
def test_name_wire_is_dnspythons(name: str) -> None:
    assert name_wire(name) == dns.name.from_text(name).to_wire()


@pytest.mark.parametrize("name", ["a..test", "x" * 64 + ".test", ".".join(["abcdefgh"] * 40)])
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        name_wire(name)


def test_addresses_and_compressed_owner_names_are_read() -> None:
    wire = reply(records=[("www.example.test", "A", ["192.0.2.1", "192.0.2.2"])])

    answer = parse_answer(wire, QID, asked())

    assert answer.rcode == dns.rcode.NOERROR and not answer.truncated
    assert sorted(r.data for r in answer.records) == [bytes([192, 0, 2, i]) for i in (1, 2)]
    assert {r.owner for r in answer.records} == {name_wire("www.example.test")}
    assert all(r.rdtype == TYPE_A and r.ttl == 300 for r in answer.records)


def test_cname_target_is_decompressed_and_lower_cased() -> None:
    wire = reply(
        "WWW.Example.test",
        "AAAA",
        [
            ("WWW.Example.test", "CNAME", ["Web.Example.TEST."]),
            ("web.example.test", "AAAA", ["2001:db8::1"]),
        ],
    )

    answer = parse_answer(wire, QID, asked("www.example.test", TYPE_AAAA))

    cname, address = answer.records
    assert cname.rdtype == TYPE_CNAME and cname.data == name_wire("web.example.test")
    assert address.rdtype == TYPE_AAAA and len(address.data) == 16


def test_txt_and_caa_data_are_parsed_by_dnspython() -> None:
    txt = reply("t.test", "TXT", [("t.test", "TXT", ['"ab" "cd"'])])
    caa = reply("t.test", "CAA", [("t.test", "CAA", ['128 issue "ca.example; accounturi=x"'])])

    (text,) = parse_answer(txt, QID, asked("t.test", TYPE_TXT)).records
    (policy,) = parse_answer(caa, QID, asked("t.test", TYPE_CAA)).records

    assert isinstance(text.rdata, dns.rdtypes.ANY.TXT.TXT) and text.rdata.strings == (b"ab", b"cd")
    assert isinstance(policy.rdata, dns.rdtypes.ANY.CAA.CAA)
    assert (policy.rdata.flags, policy.rdata.tag) == (128, b"issue")


def test_nxdomain_and_truncation_are_reported() -> None:
    request = dns.message.make_query("gone.test", "A")
    request.id = QID
    response = dns.message.make_response(request)
    response.set_rcode(dns.rcode.NXDOMAIN)
    assert parse_answer(response.to_wire(), QID, asked("gone.test")).rcode == dns.rcode.NXDOMAIN

    cut = bytearray(reply(records=[("www.example.test", "A", ["192.0.2.1"])]))
    cut[2] |= dns.flags.TC >> 8
    truncated = parse_answer(bytes(cut[:-6]), QID, asked())  # cut inside the record: not read
    assert truncated.truncated and truncated.records == ()


def test_question_matches_whatever_its_case() -> None:
    wire = reply("WwW.ExAmPlE.TeSt")
    assert parse_answer(wire, QID, asked("www.example.test")).records == ()


def test_owners_read_alike_whether_pointers_or_spelled_out_in_any_case() -> None:
    echoed = b"\x03WwW\x07ExAmPlE\x04TeSt\x00" + struct.pack("!2H", TYPE_A, 1)  # another case
    record = struct.pack("!HHIH", TYPE_A, 1, 60, 4)
    pointed = b"\xc0\x0c" + record + bytes([192, 0, 2, 1])  # a pointer to the question's name
    spelled = b"\x03WWW\x07example\x04TEST\x00" + record + bytes([192, 0, 2, 2])
    wire = struct.pack("!6H", QID, 0x8180, 1, 2, 0, 0) + echoed + pointed + spelled

    answer = parse_answer(wire, QID, asked())

    assert [r.owner for r in answer.records] == [name_wire("www.example.test")] * 2
    assert [r.data[-1] for r in answer.records] == [1, 2]


@pytest.mark.parametrize(
    "wire, why",
    [
        (reply(qid=QID + 1), "another ID"),
        (reply("other.test"), "another name"),
        (reply(rdtype="AAAA"), "another type"),
        (query(QID, asked()), "a query, not a response"),
    ],
)
def test_replies_to_other_questions_are_refused(wire: bytes, why: str) -> None:
    with pytest.raises(MismatchedAnswer):
        parse_answer(wire, QID, asked())


def _header(ancount: int = 1) -> bytes:
    return struct.pack("!6H", QID, 0x8180, 1, ancount, 0, 0)


QUESTION = asked()
RR_A = struct.pack("!HHIH", TYPE_A, 1, 60, 4) + bytes(4)
OWNER_AT = 12 + len(QUESTION)  # where the first record's owner name starts


@pytest.mark.parametrize(
    "wire",
    [
        b"\x12\x34\x81",  # shorter than a header
        _header() + QUESTION[:-2],  # question cut short
        _header() + QUESTION,  # a record announced, none sent
        _header() + QUESTION + b"\xc0\x0c" + RR_A[:-2],  # record data cut short
        _header() + QUESTION + b"\xc0\x0c" + RR_A + b"\x00",  # trailing byte
        _header() + QUESTION + b"\xc0\x40" + RR_A,  # pointer forwards
        _header() + QUESTION + struct.pack("!H", 0xC000 | OWNER_AT) + RR_A,  # pointer to itself
        _header() + QUESTION + b"\x80\x0c" + RR_A,  # reserved label type
        _header() + QUESTION + b"\x05ab",  # label past the end
        _header() + QUESTION + b"\xc0\x0c" + struct.pack("!HHIH", TYPE_A, 1, 60, 5) + bytes(5),
        _header() + QUESTION + b"\xc0\x0c" + struct.pack("!HHIH", TYPE_AAAA, 1, 60, 4) + bytes(4),
        _header()
        + QUESTION
        + b"\xc0\x0c"
        + struct.pack("!HHIH", TYPE_CNAME, 1, 60, 3)
        + b"\xc0\x0c\x00",  # bytes after the CNAME target
        _header() + QUESTION + b"\xc0\x0c" + struct.pack("!HHIH", TYPE_CAA, 1, 60, 2) + b"\x00\x09",
        _header() + QUESTION + (b"\x3f" + b"a" * 63) * 4 + b"\x00" + RR_A,  # name over 255 bytes
    ],
)
def test_malformed_replies_are_refused(wire: bytes) -> None:
    with pytest.raises(MalformedAnswer):
        parse_answer(wire, QID, QUESTION)


def test_pointer_chains_must_go_backwards() -> None:
    # offset 0: "a" root; offset 3: "b" + pointer to 0; offset 7: pointer to 3
    wire = b"\x01a\x00\x01b\xc0\x00\xc0\x03"
    assert read_name(wire, 7) == (b"\x01b\x01a\x00", 9)
    with pytest.raises(MalformedAnswer):
        read_name(b"\x01b\xc0\x04\xc0\x00", 4)  # 4 → 0, then 2 → 4: a loop


def test_name_text_shows_the_absolute_name() -> None:
    assert name_text(name_wire("a.test")) == "a.test."


def test_damaged_replies_fail_only_as_malformed_or_mismatched() -> None:
    """Every truncation and every single-byte change of real replies: no other exception."""
    originals = [
        (
            reply(
                records=[("www.example.test", "CNAME", ["w.test."]), ("w.test", "A", ["1.2.3.4"])]
            ),
            asked(),
        ),
        (
            reply("t.test", "CAA", [("t.test", "CAA", ['0 issue "ca.example"'])]),
            asked("t.test", TYPE_CAA),
        ),
        (reply("t.test", "TXT", [("t.test", "TXT", ['"v"'])]), asked("t.test", TYPE_TXT)),
    ]
    for wire, question_asked in originals:
        damaged = [wire[:cut] for cut in range(len(wire))]
        damaged += [
            wire[:i] + bytes([value]) + wire[i + 1 :]
            for i in range(len(wire))
            for value in (0x00, 0x01, 0x3F, 0x40, 0xC0, 0xFF, wire[i] ^ 0x20)
        ]
        for sample in damaged:
            try:
                parse_answer(sample, QID, question_asked)
            except (MalformedAnswer, MismatchedAnswer):
                pass
