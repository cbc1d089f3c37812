"""Parsing certsrv pages: loose, whitespace-insensitive, CRLF and wrapped lines."""

from __future__ import annotations

import pytest

from connectors.adcs_pages import (
    SubmitOutcome,
    is_under_submission,
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
            SubmitOutcome("denied", "", "Error Constructing or Publishing Certificate 0x1"),
        ),
    ],
    ids=["issued-browser", "issued-plain", "pending", "pending-wrapped", "denied", "error"],
)
def test_submit_page(page: str, expected: SubmitOutcome) -> None:
    assert parse_submit_page(page) == expected


def test_unknown_page_is_protocol_error_with_snippet() -> None:
    with pytest.raises(CAProtocolError, match="Die Zertifikatanforderung"):
        parse_submit_page("<html><body>Die Zertifikatanforderung wurde ausgestellt</body></html>")


@pytest.mark.parametrize(
    ("page", "message", "pending"),
    [
        (pages.disposition_page("Taken Under Submission"), "Taken Under Submission", True),
        (pages.disposition_page("Denied by Administrator"), "Denied by Administrator", False),
        (
            "<td>Disposition message:</td>\r\n<td>  Taken Under\r\n Submission </td>",
            "Taken Under Submission",
            True,
        ),
    ],
)
def test_disposition(page: str, message: str, pending: bool) -> None:
    assert parse_disposition(page) == message
    assert is_under_submission(message) is pending


def test_disposition_missing_is_protocol_error() -> None:
    with pytest.raises(CAProtocolError):
        parse_disposition(pages.error_page("The request ID does not exist."))


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
