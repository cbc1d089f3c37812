"""Generated SCEP requests: broken pkiMessages, odd operations, labels and methods.

A readable pkiMessage that fails later is answered 200 with a signed FAILURE
CertRep; anything else is a one-line 4xx. Never a 5xx, a traceback or a hang.
"""

from __future__ import annotations

import base64
import functools
import os
import random
from collections.abc import Callable
from urllib.parse import quote

from asn1crypto import core

from gateway.scep import message as m
from gateway.scep.envelope import seal
from tests.badinput import corpus
from tests.badinput.acme_cases import spare_key
from tests.badinput.case import TRANSPORT, Case
from tests.badinput.server import Target
from tests.scep.client import scep_csr, self_signed

SCEP = "/scep"
PKI_MESSAGE = "application/x-pki-message"


@functools.cache
def _device() -> tuple[object, bytes]:
    key = spare_key("rsa2048")
    return key, self_signed(key)


def pki_message(rng: random.Random, message_type: str | None = None) -> bytes:
    """A well-formed pkiMessage, encrypted to a stranger's certificate (not the RA's)."""
    key, cert = _device()
    inner = corpus.pick(rng, [scep_csr(key, "d.badinput.example", "pw"),  # type: ignore[arg-type]
                              b"", b"\x30\x00", os.urandom(40)])
    kind = message_type or corpus.pick(rng, ["19", "17", "20", "21", "22", "3", "99", "",
                                             "19 ", "x" * 300])
    attrs = [m.scep_attribute(m.OID_MESSAGE_TYPE, core.PrintableString(kind)),
             m.scep_attribute(m.OID_TRANSACTION_ID,
                              core.PrintableString(corpus.pick(rng, ["t1", "x" * 129, "a b"]))),
             m.scep_attribute(m.OID_SENDER_NONCE, core.OctetString(os.urandom(16)))]
    envelope = seal(inner, cert) if rng.random() < 0.8 else os.urandom(64)
    return m.signed_message(envelope, attrs, key, cert)  # type: ignore[arg-type]


def _url(t: Target, rng: random.Random, operation: str = "PKIOperation") -> str:
    label = corpus.pick(rng, ["", "/dev"])
    page = corpus.pick(rng, ["/pkiclient.exe", "/pkiclient.exe", ""])
    return t.url(f"{SCEP}{label}{page or '/'}?operation={operation}")


def body_case(rng: random.Random, t: Target) -> Case:
    """A PKIOperation body: a pkiMessage mutated, garbage, base64 of either, or empty."""
    kind = rng.randrange(4)
    if kind == 0:
        body = corpus.mutate_bytes(rng, pki_message(rng))
    elif kind == 1:
        body = pki_message(rng)
    elif kind == 2:
        body = base64.b64encode(corpus.mutate_bytes(rng, pki_message(rng, "19")))
    else:
        body = corpus.pick(rng, [b"", b"\x30", b"\x30\x84\xff\xff\xff\xff", b"====",
                                 b"\x00" * 100, "\u00e9".encode() * 10, b"M" * 60000])
    return Case("scep.body", "POST", _url(t, rng), body, {"Content-Type": PKI_MESSAGE})


def get_case(rng: random.Random, t: Target) -> Case:
    """PKIOperation over GET: the message base64 in the query, whole or broken."""
    text = base64.b64encode(corpus.mutate_bytes(rng, pki_message(rng))).decode()
    message = corpus.pick(rng, [text, text[:50], "!!!", "", "%", text + "=="])
    return Case("scep.get", "GET", _url(t, rng) + "&message=" + quote(message, safe=""),
                b"", {})


def path_case(rng: random.Random, t: Target) -> Case:
    """Unknown labels and operations, methods SCEP does not take, odd queries."""
    method = corpus.pick(rng, ["GET", "POST", "PUT", "DELETE", "HEAD"])
    operation = corpus.pick(rng, ["GetCACaps", "GetCACert", "GetNextCACert", "", "getcacaps",
                                  "PKIOperation", "x" * 500, "%00"])
    path = corpus.pick(rng, ["/pkiclient.exe", "/nolabel/pkiclient.exe", "/dev/x/y",
                             "/" + "l" * 1000, "/%00", "/dev/pkiclient.exe/extra"])
    return Case("scep.path", method, t.url(f"{SCEP}{path}?operation={operation}"), b"x", {})


def oversize_case(rng: random.Random, t: Target) -> Case:
    """Bodies past the SCEP limit (64 KiB): 413."""
    size = corpus.pick(rng, [64 * 1024 + 1, 200 * 1024])
    return Case("scep.oversize", "POST", _url(t, rng), b"\x30" * size,
                {"Content-Type": PKI_MESSAGE}, status=413, group=TRANSPORT)


BUILDERS: list[tuple[Callable[[random.Random, Target], Case], int]] = [
    (body_case, 4), (get_case, 2), (path_case, 2), (oversize_case, 1),
]
"""Each builder with its weight."""
