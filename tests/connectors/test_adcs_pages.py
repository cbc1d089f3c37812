"""Parsing certsrv pages: loose, whitespace-insensitive, CRLF and wrapped lines."""

from __future__ import annotations

import pytest

from connectors.adcs.pages import (
    SubmitOutcome,
    classify_message,
    parse_cert,
    parse_disposition,
    parse_p7b,
    parse_renewals,
    parse_submit_page,
)
from connectors.base import CAProtocolError
from tests.fakes import certsrv_pages as pages
from tests.fakes.pki import MiniCA


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (pages.issued_page(12, browser=True), SubmitOutcome("issued", "12")),
        (pages.issued_page(13, browser=False), SubmitOutcome("issued", "13")),
        (pages.pending_page(14), SubmitOutcome("pending", "14")),
        ("Your Request Id is\r\n\t 15\r\n.", SubmitOutcome("pending", "15")),
        (
            pages.denied_page(
                16,
                "Denied by Policy Module  0x80094800, The request was for a\r\n"
                "certificate template that is not supported",
            ),
            SubmitOutcome(
                "denied",
                "16",
                "Denied by Policy Module 0x80094800, The request was for a "
                "certificate template that is not supported",
            ),
        ),
        (
            '<P>The disposition message is "Error Constructing or Publishing Certificate 0x1".</P>',
            SubmitOutcome("error", "", "Error Constructing or Publishing Certificate 0x1"),
        ),
        (
            '<P> Your Request Id is 17. The disposition message is "(none)".</P>',
            SubmitOutcome("pending", "17", "(none)"),
        ),
    ],
    ids=["issued-browser", "issued-plain", "pending", "pending-wrapped", "denied", "error",
         "none-with-id"],
)
def test_submit_page(page: str, expected: SubmitOutcome) -> None:
    assert parse_submit_page(page) == expected


@pytest.mark.parametrize(("text", "kind"), [
    ("The RPC server is unavailable. 0x800706ba (WIN32: 1722)", "unavailable"),
    ("The request contains no certificate template information. 0x80094801", "error"),
])
def test_error_pages_are_no_verdict(text: str, kind: str) -> None:
    outcome = parse_submit_page(pages.error_page(text))
    assert outcome.kind == kind and text in outcome.message and not outcome.request_id


def test_unknown_page_is_protocol_error_with_snippet() -> None:
    with pytest.raises(CAProtocolError, match="Die Zertifikatanforderung"):
        parse_submit_page("<html><body>Die Zertifikatanforderung wurde ausgestellt</body></html>")


@pytest.mark.parametrize(
    ("page", "kind", "message"),
    [
        (pages.disposition_page("Taken Under Submission"), "pending", "Taken Under Submission"),
        (pages.disposition_page("Denied by Administrator"), "denied", "Denied by Administrator"),
        ("<td>Disposition message:</td>\r\n<td>  Taken Under\r\n Submission </td>", "pending",
         "Taken Under Submission"),
        # certsrv with its CA service stopped: no verdict at all, never a refusal
        (pages.disposition_page("(none)"), "none", "(none)"),
        ("<td>Disposition message:</td><td></td>", "none", "(none)"),
        (pages.disposition_page("Revoked"), "denied", "Revoked"),
        (pages.disposition_page("Error Verifying Request 0x80094005"), "error",
         "Error Verifying Request 0x80094005"),
    ],
    ids=["pending", "denied", "wrapped", "none", "empty", "revoked", "hresult"],
)
def test_disposition(page: str, kind: str, message: str) -> None:
    assert parse_disposition(page) == SubmitOutcome(kind, "", message)


def test_a_page_without_disposition_or_code_is_protocol_error() -> None:
    with pytest.raises(CAProtocolError):
        parse_disposition(pages.error_page("The request ID does not exist."))


@pytest.mark.parametrize(("message", "kind"), [
    ("Denied by Policy Module", "denied"), ("Taken Under Submission", "pending"),
    ("(none)", "none"), ("", "none"), ("Issued", "issued"),
    ("The RPC server is unavailable. 0x800706ba", "unavailable"),
    ("Error Parsing Request 0x80092002", "error"),
])
def test_classify_message(message: str, kind: str) -> None:
    assert classify_message(message) == kind


def test_renewals() -> None:
    assert parse_renewals(pages.carc_page(3)) == 3
    with pytest.raises(CAProtocolError, match="nRenewals"):
        parse_renewals("<html></html>")


def test_certificates_in_b64_crlf_and_der() -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

    ca = MiniCA()
    der = ca.cert.public_bytes(Encoding.DER)
    assert parse_cert(pages.pem_crlf(der)) == der
    assert parse_cert(der) == der
    p7 = pkcs7.serialize_certificates([ca.cert, ca.root], Encoding.DER)
    # a SET OF: the order inside PKCS#7 is not meaningful
    assert sorted(parse_p7b(pages.pem_crlf(p7))) == sorted(
        [der, ca.root.public_bytes(Encoding.DER)]
    )
    with pytest.raises(CAProtocolError):
        parse_cert(b"-----BEGIN CERTIFICATE-----\r\n!!!\r\n-----END CERTIFICATE-----")
