"""Building blocks of bad input: odd values, odd names, broken JSON texts and bytes.

Every function takes the case's ``random.Random`` so that a seed replays a run.
"""

from __future__ import annotations

import json
import random
from typing import Any

ODD_STRINGS = [
    "", " ", "\n", "\x00", "a\nb", "\r\n\r\nX-Injected: 1", "\u202e", "\U0001f4a5", "%00",
    "../../etc/passwd", "\\", '"', "null", "true", "yes", "1", "1e999", "NaN", "<script>",
    "xn--", "*", "\u2026", "A" * 5000, "mailto:", "mailto:a@b", "deactivated ",
    "DEACTIVATED", "valid", "2027-13-45T99:99:99Z", "2027-01-01", "2027-01-01T00:00:00",
]
ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1.5, 2 ** 70, -(2 ** 63), [], {}, [1], {"a": 1}, [None],
    [[[]]], {"": ""}, *ODD_STRINGS[:12],
]

ODD_NAMES = [
    "a\n.example.test", "a\r.example.test", "a\t.example.test", "a\x00.example.test",
    "a .example.test", " a.example.test", "a.example.test ", "example.com.", "*.example.com.",
    ".example.com", "a..example.com", "-a.example.com", "a-.example.com", "ab--c.example.com",
    "xn--zz.example.com", "xn--a.example.com", "xn--.example.com", "b\u00fccher.example",
    "xn--bcher-kva.example", "\u0430pple.example", "example.123", "192.0.2.1", "1.2.3",
    "localhost", "com", "*", "*.com", "a.*.example.com", "*a.example.com", "**.example.com",
    "*.*.example.com", "a_b.example.com", "a/b.example.com", "a@b.example.com",
    "a" * 64 + ".example.com", ".".join(["a" * 63] * 4), "A.EXAMPLE.COM", "ok.example.com",
    "a\u200b.example.com", "a.example.com\n", "\ufeffa.example.com", "%61.example.com",
    "a.example.com:443", "[::1]", "a." * 200 + "com",
]
WELL_FORMED = {"xn--bcher-kva.example", "A.EXAMPLE.COM", "ok.example.com", "::1", "192.0.2.1",
               "2001:db8::1"}
"""The names and addresses of the lists above that are not refused for their form."""
ODD_IPS = [
    "127.000.0.1", "01.2.3.4", "1.2.3", "1.2.3.4.", "0x7f.0.0.1", "2001:DB8::1",
    "2001:db8:0::1", "::ffff:1.2.3.4", "::ffff:102:304", "fe80::1%eth0", "[::1]", "",
    "1.2.3.4\n", " 1.2.3.4", "256.1.1.1", "::1", "192.0.2.1", "2001:db8::1", "1:2:3:4:5:6:7:8:9",
    "example.com",
]


def pick(rng: random.Random, items: list[Any]) -> Any:
    """One item (``rng.choice`` with a name that reads in case builders)."""
    return rng.choice(items)


def deep(rng: random.Random) -> bytes:
    """A nesting far beyond any limit, sometimes closed, sometimes not."""
    depth = rng.choice([17, 40, 1000, 10_000, 50_000])
    opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
    inner = opener * depth + b"1"
    return inner + closer * depth if rng.random() < 0.5 else inner


def broken_json(rng: random.Random, valid: bytes) -> bytes:
    """A JSON text that is wrong in one of the ways the strict decoder names."""
    kind = rng.randrange(15)
    if kind == 0:
        return deep(rng)
    if kind == 1:
        return valid[:rng.randrange(len(valid) + 1)]
    if kind == 2:
        return valid.decode().encode(rng.choice(["utf-16", "utf-16-le", "utf-32", "utf-16-be"]))
    if kind == 3:
        return b"\xef\xbb\xbf" + valid
    if kind == 4:
        return duplicate_member(rng, valid)
    if kind == 5:
        return valid[:1] + rng.choice([b'"n":NaN,', b'"n":Infinity,', b'"n":1e999,',
                                       b'"n":' + b"9" * 5000 + b","]) + valid[1:]
    if kind == 6:
        return rng.choice([b"[]", b"null", b"1", b'"x"', b"true", b"", b" ", b"[{}]"])
    if kind == 7:
        return valid + rng.choice([b"x", b"{}", b"\x00", b" ]", b"\n\n{"])
    if kind == 8:
        return valid[:1] + b'"s":"\\ud800",' + valid[1:]
    if kind == 9:
        return valid[:1] + b'"s":"\xff\xfe",' + valid[1:]
    if kind == 10:
        return valid.replace(b'"', b"'", rng.randrange(1, 4))
    return mutate_bytes(rng, valid)


def duplicate_member(rng: random.Random, valid: bytes) -> bytes:
    """The object of ``valid`` with one member written twice."""
    try:
        obj = json.loads(valid)
    except ValueError:
        obj = None
    if not isinstance(obj, dict) or not obj:
        return b'{"a":1,"a":1}'
    name = rng.choice(sorted(obj))
    return valid[:-1] + b"," + json.dumps({name: obj[name]}).encode()[1:]


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """``data`` truncated, flipped, cut, grown or spliced at a random place."""
    if not data:
        return random_bytes(rng, rng.randrange(1, 64))
    at = rng.randrange(len(data))
    kind = rng.randrange(7)
    if kind == 0:
        return data[:at]
    if kind == 1:
        flipped = bytearray(data)
        for _ in range(rng.randrange(1, 8)):
            flipped[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(flipped)
    if kind == 2:
        return data[:at] + data[at + rng.randrange(1, 64):]
    if kind == 3:
        return data[:at] + random_bytes(rng, rng.randrange(1, 32)) + data[at:]
    if kind == 4:
        return data + data[at:]
    if kind == 5:
        return data[:at] + b"\x00" * rng.randrange(1, 16) + data[at:]
    return random_bytes(rng, rng.randrange(1, 2048))


def random_bytes(rng: random.Random, count: int) -> bytes:
    """``count`` bytes of the case's random stream."""
    return rng.randbytes(count)


def b64_breakage(rng: random.Random, text: str) -> str:
    """base64url text made invalid: padding, the other alphabet, spaces, junk, cut."""
    kind = rng.randrange(6)
    if kind == 0:
        return text + rng.choice(["=", "==", "==="])
    if kind == 1:
        return text.replace("-", "+").replace("_", "/") + "+/"
    if kind == 2:
        return text[:len(text) // 2] + rng.choice([" ", "\n", "\t", "."]) + text[len(text) // 2:]
    if kind == 3:
        return text + rng.choice(["!", "\u00e9", "%", "*"])
    if kind == 4:
        return text[:rng.randrange(len(text) + 1)] + "A" * (rng.randrange(3) * 4 + 1)
    return "".join(rng.choice("AZaz09-_") for _ in range(rng.randrange(1, 9))) + "="
