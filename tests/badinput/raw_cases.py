"""Requests that break HTTP itself, written to a socket byte for byte.

aiohttp's parser answers most of them before any route runs (group ``parser``):
for those only "an answer below 500, and no hang" is asked.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from urllib.parse import urlsplit

from tests.badinput import corpus
from tests.badinput.case import PARSER, Case
from tests.badinput.server import Target


def _request(path: str, headers: list[str], body: bytes = b"", line: str = "") -> bytes:
    head = line or f"POST {path} HTTP/1.1"
    return ("\r\n".join([head, "Host: 127.0.0.1", *headers]) + "\r\n\r\n").encode() + body


def raw_case(rng: random.Random, t: Target) -> Case:
    """One odd request: header sizes and bytes, lengths, chunking, request lines."""
    path = urlsplit(corpus.pick(rng, [t.directory["newOrder"], t.url(
        "/.well-known/est/simpleenroll"), t.kid])).path
    jose = "Content-Type: application/jose+json"
    kind = rng.randrange(10)
    if kind == 0:
        raw = _request(path, [jose, "X-Big: " + "a" * rng.choice([9000, 70000]),
                              "Content-Length: 2"], b"{}")
    elif kind == 1:
        raw = _request(path, [jose, *(f"X-H{i}: v" for i in range(rng.choice([200, 2000]))),
                              "Content-Length: 2"], b"{}")
    elif kind == 2:
        value = corpus.pick(rng, ["abc", "-1", "2, 3", "99999999999999999999", " 2", "0x2"])
        raw = _request(path, [jose, f"Content-Length: {value}"], b"{}")
    elif kind == 3:
        raw = _request(path, [jose, "Content-Length: 2", "Content-Length: 5"], b"{}")
    elif kind == 4:
        chunk = corpus.pick(rng, [b"zz\r\n{}\r\n0\r\n\r\n", b"2\r\n{}\r\n", b"-1\r\n\r\n",
                                  b"ffffffffffffffff\r\n{}", b"2\r\n{}0\r\n\r\n"])
        raw = _request(path, [jose, "Transfer-Encoding: chunked"], chunk)
    elif kind == 5:
        raw = _request(path, [jose, "Transfer-Encoding: chunked", "Content-Length: 2"],
                       b"2\r\n{}\r\n0\r\n\r\n")
    elif kind == 6:
        bad = corpus.pick(rng, ["X-A: a\x00b", "X-A: \x7f", "X\x01: a", ": empty", "NoColon",
                                "X-A: caf\u00e9", " folded: x", "Content-Type: \x00"])
        raw = _request(path, [jose, bad, "Content-Length: 2"], b"{}")
    elif kind == 7:
        line = corpus.pick(rng, [f"POST {path}", f"POST {path} HTTP/9.9", f"POST  {path} HTTP/1.1",
                                 "GET", f"P\x00ST {path} HTTP/1.1", f"POST http://x{path} HTTP/1.1",
                                 f"POST {path}?{'q' * 9000} HTTP/1.1", "POST *  HTTP/1.1"])
        raw = _request(path, [jose, "Content-Length: 2"], b"{}", line)
    elif kind == 8:
        raw = f"POST {path} HTTP/1.1\nHost: x\n{jose}\nContent-Length: 2\n\n{{}}".encode()
    else:
        raw = corpus.mutate_bytes(rng, _request(path, [jose, "Content-Length: 2"], b"{}"))
    return Case("http.raw", "POST", t.url(path), raw=raw, group=PARSER)


BUILDERS: list[tuple[Callable[[random.Random, Target], Case], int]] = [(raw_case, 3)]
"""The builder with its weight."""
