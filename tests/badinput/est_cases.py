"""Generated EST requests: bodies, CSRs with odd names or keys, headers, paths, methods."""

from __future__ import annotations

import base64
import random
import warnings
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from tests.badinput import corpus
from tests.badinput.acme_cases import ed25519_csr, spare_key
from tests.badinput.case import TRANSPORT, Case
from tests.badinput.server import USER, Target

EST = "/.well-known/est"
PKCS10 = "application/pkcs10"
ENROLL_OPS = ["simpleenroll", "simplereenroll", "serverkeygen"]


def est_csr(rng: random.Random, cn: str | None = "router.badinput.example",
            sans: tuple[str, ...] = (), key_kind: str = "p256") -> bytes:
    """A DER CSR; names the builder refuses come out as an empty SEQUENCE."""
    key = spare_key(key_kind)
    if key_kind == "ed25519":
        return ed25519_csr(key)
    try:
        with warnings.catch_warnings():  # a CN over 64 characters is wanted here
            warnings.simplefilter("ignore")
            attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []
        builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
        if sans:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), False)
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    except (ValueError, TypeError, UnicodeError):
        return b"\x30\x00"


def _encode(rng: random.Random, der: bytes) -> bytes:
    """A body as clients send it: base64 in lines, one line, PEM, or raw DER."""
    text = base64.b64encode(der)
    kind = rng.randrange(4)
    if kind == 0:
        return b"\n".join(text[i:i + 64] for i in range(0, len(text), 64)) + b"\n"
    if kind == 1:
        return text
    if kind == 2:
        return (b"-----BEGIN CERTIFICATE REQUEST-----\n" + text +
                b"\n-----END CERTIFICATE REQUEST-----\n")
    return der


def _url(t: Target, rng: random.Random, op: str | None = None) -> str:
    label = corpus.pick(rng, ["", "/default", "/basic"])
    return t.url(f"{EST}{label}/{op or corpus.pick(rng, ENROLL_OPS)}")


def _headers(rng: random.Random, label_url: str) -> dict[str, str]:
    headers = {"Content-Type": PKCS10}
    if "/basic/" in label_url:
        token = base64.b64encode(":".join(USER).encode()).decode()
        headers["Authorization"] = "Basic " + token
    if rng.random() < 0.3:
        headers["Content-Transfer-Encoding"] = corpus.pick(rng, ["base64", "binary", "7bit",
                                                                 "gzip", "BASE64", "x" * 300])
    return headers


def body_case(rng: random.Random, t: Target) -> Case:
    """An enrollment body: a valid CSR broken as base64, DER or PEM, or plain garbage."""
    url = _url(t, rng)
    der = est_csr(rng)
    kind = rng.randrange(5)
    if kind == 0:
        body = corpus.mutate_bytes(rng, _encode(rng, der))
    elif kind == 1:
        body = _encode(rng, corpus.mutate_bytes(rng, der))
    elif kind == 2:
        body = corpus.pick(rng, [b"", b"\n", b"====", b"-----BEGIN X-----", b"\x30",
                                 b"\x30\x84\xff\xff\xff\xff", b"\x30\x82\x01", b"A",
                                 b"\x00" * 100, "\u00e9".encode() * 10, b"MII=", b"M" * 65000])
    elif kind == 3:
        body = base64.b64encode(der)[:-rng.randrange(1, 40)]
    else:
        body = corpus.broken_json(rng, b'{"csr":"x"}')
    return Case("est.body", "POST", url, body, _headers(rng, url))


def names_case(rng: random.Random, t: Target) -> Case:
    """A well-encoded CSR asking for odd names or with an odd key: refused with a reason."""
    url = _url(t, rng, "simpleenroll")
    cn = corpus.pick(rng, [None, *corpus.ODD_NAMES, *corpus.ODD_IPS])
    sans = tuple(corpus.pick(rng, corpus.ODD_NAMES) for _ in range(rng.randrange(3)))
    key_kind = corpus.pick(rng, ["p256", "p256", "p256", "rsa1024", "p521", "ed25519"])
    return Case("est.names", "POST", url, _encode(rng, est_csr(rng, cn, sans, key_kind)),
                _headers(rng, url))


def header_case(rng: random.Random, t: Target) -> Case:
    """Media types, transfer encodings and credentials that are wrong or malformed."""
    url = _url(t, rng)
    headers = _headers(rng, url)
    kind = rng.randrange(3)
    if kind == 0:
        headers["Content-Type"] = corpus.pick(rng, ["", "text/plain", "application/json",
                                                    "application/pkcs10; charset=utf-16",
                                                    "application/pkcs7-mime"])
    elif kind == 1:
        headers["Authorization"] = corpus.pick(rng, [
            "Basic", "Basic !!!", "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode(),
            "Basic " + base64.b64encode(b"nocolon").decode(), "Bearer x", "Basic " + "A" * 4000,
            "Basic " + base64.b64encode(b"device:wrong").decode(), "basic ZGV2aWNlOg=="])
    else:
        # Control characters in headers are the raw cases' part (aiohttp will not send them).
        printable = [v for v in corpus.ODD_STRINGS if v.isprintable() and v.isascii()]
        headers["Content-Transfer-Encoding"] = corpus.pick(rng, printable)
    return Case("est.headers", "POST", url, _encode(rng, est_csr(rng)), headers)


def path_case(rng: random.Random, t: Target) -> Case:
    """Unknown labels and operations, and methods an operation does not take."""
    method = corpus.pick(rng, ["GET", "POST", "PUT", "DELETE", "HEAD"])
    path = corpus.pick(rng, ["/cacerts", "/csrattrs", "/simpleenroll", "/nolabel/cacerts",
                             "/default/nothing", "/", "", "/a/b/c/cacerts", "/%00/cacerts",
                             "/" + "l" * 1000 + "/cacerts", "/fullcmc", "/basic/serverkeygen"])
    return Case("est.path", method, t.url(EST + path), b"x", {"Content-Type": PKCS10})


def oversize_case(rng: random.Random, t: Target) -> Case:
    """Authorized bodies past the EST limit (64 KiB): 413."""
    url = t.url(f"{EST}/basic/{corpus.pick(rng, ['simpleenroll', 'serverkeygen'])}")
    size = corpus.pick(rng, [64 * 1024 + 1, 200 * 1024])
    return Case("est.oversize", "POST", url, b"M" * size, _headers(rng, url), status=413,
                group=TRANSPORT)


BUILDERS: list[tuple[Callable[[random.Random, Target], Case], int]] = [
    (body_case, 10), (names_case, 6), (header_case, 4), (path_case, 2), (oversize_case, 1),
]
"""Each builder with its weight."""
