"""The strict JSON decoder: one row per rule, and the cost of the usual case."""

from __future__ import annotations

import json
import timeit

import pytest

from gateway.acme.jsonstrict import MAX_DEPTH, loads_object
from gateway.errors import ErrorKind, GatewayError


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("raw,reason", [
    (b"[" * 10_000, "nests deeper"),
    (b"{" * 100_000, "nests deeper"),
    (nested(MAX_DEPTH + 1), "nests deeper"),
    (b'{"a":1,"a":2}', "'a' appears twice"),
    (b'{"o":{"b":1,"b":1}}', "'b' appears twice"),
    ('{"a":1}'.encode("utf-16"), "byte order mark"),
    ('{"a":1}'.encode("utf-16-le"), "UTF-16 or UTF-32"),
    ('{"a":1}'.encode("utf-16-be"), "UTF-16 or UTF-32"),
    ('{"a":1}'.encode("utf-32-le"), "UTF-16 or UTF-32"),
    (b'\xef\xbb\xbf{"a":1}', "byte order mark"),
    (b'{"a":"\xff"}', "not valid UTF-8"),
    (b'{"a":"\xed\xa0\x80"}', "not valid UTF-8"),  # an encoded surrogate
    (b'{"a":"\\ud800"}', "lone UTF-16 surrogate"),
    (b'{"a":"\\udc00x"}', "lone UTF-16 surrogate"),
    (b'{"a":NaN}', "NaN is not a JSON number"),
    (b'{"a":-Infinity}', "-Infinity is not a JSON number"),
    (b'{"a":1e400}', "too large"),
    (b'{"a":' + b"1" * 5000 + b"}", "not valid JSON"),
    (b"[]", "must be a JSON object"),
    (b'"text"', "must be a JSON object"),
    (b"null", "must be a JSON object"),
    (b"", "not valid JSON"),
    (b"{", "not valid JSON"),
    (b"{} {}", "not valid JSON"),
    (b"{'a':1}", "not valid JSON"),
    (b'{"a":1,}', "not valid JSON"),
    (b'{"a":"\x01"}', "not valid JSON"),
    (b'{"a":"' + b"\\\"" * 1000 + b"[" * 20, "not valid JSON"),  # unterminated string
])
def test_refusals(raw: bytes, reason: str) -> None:
    with pytest.raises(GatewayError) as err:
        loads_object(raw, "the body")
    assert err.value.kind is ErrorKind.MALFORMED
    assert err.value.detail.startswith("the body ")
    assert reason in err.value.detail


@pytest.mark.parametrize("raw,value", [
    (b"{}", {}),
    (b' \r\n\t{"a": [1, 2.5, true, null]} ', {"a": [1, 2.5, True, None]}),
    (nested(MAX_DEPTH), json.loads(nested(MAX_DEPTH))),
    (b'{"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', {"a": "[" * 36}),
    (b'{"a":"\\"{{{{{{{{{{{{{{{{{{{{{{"}', {"a": '"' + "{" * 22}),
    (b'{"a":"\\ud83d\\ude00"}', {"a": "\U0001f600"}),
    ('{"a":"bücher"}'.encode(), {"a": "bücher"}),
    (b'{"a":[' + b"1," * 1000 + b"1]}", {"a": [1] * 1001}),
])
def test_accepted(raw: bytes, value: dict[str, object]) -> None:
    assert loads_object(raw, "the body") == value


def test_size_limit() -> None:
    with pytest.raises(GatewayError) as err:
        loads_object(b'{"a":"' + b"x" * 100 + b'"}', "the body", max_size=64)
    assert "larger than 64 bytes" in err.value.detail


def test_usual_payload_costs_about_the_stdlib_decoder() -> None:
    payload = json.dumps({"identifiers": [{"type": "dns", "value": f"www{i}.example.com"}
                                          for i in range(3)],
                          "notAfter": "2027-01-01T00:00:00Z"}).encode()
    stdlib = min(timeit.repeat(lambda: json.loads(payload), number=2000, repeat=5))
    strict = min(timeit.repeat(lambda: loads_object(payload, "x"), number=2000, repeat=5))
    assert strict < 3 * stdlib, (strict, stdlib)
