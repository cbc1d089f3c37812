"""The one strict JSON decoder of every ACME body, protected header and payload.

RFC 8555 §6.2 makes every message a JSON object (RFC 8259) inside a JWS; what
a lenient parser lets through here reaches the policy as something the client
did not mean. So, and always with ``malformed`` and a detail naming the rule:

* bytes must be UTF-8 without a byte order mark (RFC 8259 §8.1): UTF-16/32
  bodies, a BOM and invalid UTF-8 are refused rather than guessed at;
* a bounded size and nesting depth: Python's decoder recurses once per level,
  and ``[`` × 10,000 would end in a RecursionError deep inside it. The depth is
  counted without recursion before the decoder runs;
* no duplicate object members (RFC 7515 §5.2 step 4 for JOSE headers; for a
  payload, which of two values "counts" is ambiguous);
* no NaN/Infinity (not JSON) and no number that overflows to infinity;
* no lone UTF-16 surrogate escape (``"\\ud800"``): it decodes to a string that
  cannot be encoded back to UTF-8, for a log line, a database or a response;
* the top level is an object.

The normal path costs about the standard library's ``json.loads``: one UTF-8
decode, two byte counts and the C decoder with a duplicate check per object.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from gateway.errors import ErrorKind, GatewayError

MAX_DEPTH = 16
"""Deepest nesting accepted: a newAccount with an EAB binding and a jwk needs 3."""
MAX_SIZE = 256 * 1024
"""Largest JSON text accepted (the largest ACME request body the gateway reads)."""

# A string token may be unterminated: it then runs to the end instead of failing and
# being retried from every later quote (which would make the scan quadratic).
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.S)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


class _Refused(ValueError):
    """A rule broken inside the decoder; its message is the client-facing reason."""


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise _Refused(f"member {_repeated(pairs)!r} appears twice in one object")
    return members


def _repeated(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            return name
        seen.add(name)
    return ""


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:20]} is too large")
    return value


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_members, parse_constant=_no_constant,
                            parse_float=_finite)
_SCAN = _DECODER.scan_once  # type: ignore[attr-defined]


def _decode(text: str) -> Any:
    """``_DECODER.decode(text)``, by one call of its C scanner when the value fills ``text``.

    JSONDecoder.decode adds two Python frames and two whitespace matches around
    the scanner; only text with whitespace around the value (or an error) needs them.
    """
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:  # nothing JSON at 0: leading whitespace, or not JSON at all
        return _DECODER.decode(text)
    if end != len(text):  # trailing whitespace, or text after the value
        return _DECODER.decode(text)
    return value


def _depth(raw: bytes) -> int:
    """The deepest nesting of ``raw``, brackets inside strings not counted, no recursion."""
    deepest = depth = 0
    for token in _TOKENS.findall(raw):
        if token in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


def _unreadable(raw: bytes, what: str) -> GatewayError:
    """Why ``raw`` did not decode: another encoding than UTF-8 (RFC 8259 §8.1), or bad JSON.

    Only asked after a failure: no UTF-16/32 text of a JSON object is valid JSON
    when read as UTF-8 (its NUL bytes stand outside strings), so the usual case
    pays for none of these checks.
    """
    if raw[:3] == b"\xef\xbb\xbf" or raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return malformed(what, "starts with a byte order mark; send UTF-8 without one")
    if b"\x00" in raw[:4]:
        return malformed(what, "is UTF-16 or UTF-32; send UTF-8 (RFC 8259 §8.1)")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return malformed(what, f"is not valid UTF-8 (byte {exc.start})")
    return malformed(what, "is not valid JSON")


def malformed(what: str, why: str) -> GatewayError:
    """The refusal of a JSON text: ``what`` names the part of the request."""
    return GatewayError(ErrorKind.MALFORMED, f"{what} {why}")


def loads_object(raw: bytes, what: str, max_size: int = MAX_SIZE) -> dict[str, Any]:
    """Bytes that must hold one JSON object, decoded by the rules of this module."""
    if len(raw) > max_size:
        raise malformed(what, f"is larger than {max_size} bytes")
    # Fewer opening brackets than the limit cannot nest deeper: the usual case, no scan.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _depth(raw) > MAX_DEPTH:
        raise malformed(what, f"nests deeper than {MAX_DEPTH} levels")
    try:
        value = _decode(raw.decode("utf-8"))
    except _Refused as exc:
        raise malformed(what, f"is refused: {exc}") from None
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _unreadable(raw, what) from None
    if not isinstance(value, dict):
        raise malformed(what, "must be a JSON object")
    if b"\\u" in raw and _SURROGATE_ESCAPE.search(raw):
        _check_encodable(value, what)
    return value


def _check_encodable(value: dict[str, Any], what: str) -> None:
    """Refuse a lone surrogate escape (a valid pair decodes to one code point)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise malformed(what, "holds a lone UTF-16 surrogate escape (\\ud800-\\udfff)") from None
