"""EST helpers: enrollment URLs and PKCS#7 certs-only parsing."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from loadtest.acme import AcmeError
from loadtest.est import decode_certs_only, enroll_url
from loadtest.pebble import self_signed


@pytest.mark.parametrize(
    ("base", "label", "url"),
    [
        ("https://h:8443", "", "https://h:8443/.well-known/est/simpleenroll"),
        ("https://h:8443/", "routers", "https://h:8443/.well-known/est/routers/simpleenroll"),
        ("https://h/.well-known/est/", "", "https://h/.well-known/est/simpleenroll"),
    ],
)
def test_enroll_url(base: str, label: str, url: str) -> None:
    assert enroll_url(base, label) == url


def certs_only() -> bytes:
    certs = [x509.load_pem_x509_certificate(self_signed([n], [])[0]) for n in ("a", "b")]
    return pkcs7.serialize_certificates(certs, serialization.Encoding.DER)


@pytest.mark.parametrize(
    "encode",
    [
        lambda der: der,
        lambda der: base64.b64encode(der),
        lambda der: base64.encodebytes(der),
        lambda der: b"\r\n".join(
            base64.b64encode(der)[i : i + 64] for i in range(0, len(der) * 2, 64)
        ),
    ],
    ids=["der", "one-line", "76-columns", "64-columns-crlf"],
)
def test_certs_only_in_any_layout(encode: object) -> None:
    assert decode_certs_only(encode(certs_only())) == 2  # type: ignore[operator]


def test_garbage_is_a_bad_pkcs7() -> None:
    with pytest.raises(AcmeError) as caught:
        decode_certs_only(b"not pkcs7")
    assert caught.value.kind == "bad-pkcs7"
