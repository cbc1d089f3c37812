"""Classifying EJBCA's answers: EJBCA 8 says 400 for nearly everything, the message tells."""

from __future__ import annotations

import pytest

from connectors.base import CAConfigError, CAProtocolError, CAUnavailable, Pending, Rejected
from connectors.ejbca.wire import (
    ApprovalRef,
    EnrollParams,
    approval_request_id,
    classify_finalize,
    classify_refusal,
    error_message,
)


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (202, "Request is waiting for approval.", Pending),
        (400, "Request for end entity x is waiting for approval.", Pending),
        (400, "Approval request with id 77 has been rejected.", Rejected),
        (400, "Approval request with id 77 has expired.", Rejected),
        (400, "CA 'IssuingCA' is offline.", CAUnavailable),
        (400, "CA's crypto token is not active.", CAUnavailable),
        (503, "Service unavailable", CAUnavailable),
        (500, "NullPointerException", CAUnavailable),
        (400, "CA with name Foo doesn't exist.", CAConfigError),
        (400, "Could not find profile 'NOPE'.", CAConfigError),
        (403, "Not authorized to resource /administrator.", CAConfigError),
        (404, "End entity profile not found", CAConfigError),
        (400, "Subject DN field 'CN' must exist.", Rejected),
        (422, "Validity exceeds the certificate profile's maximum", Rejected),
        (409, "User already exists with a different CA", Rejected),
        (302, "redirect to login", CAProtocolError),
    ],
)
def test_classify(status: int, message: str, expected: type) -> None:
    if issubclass(expected, Exception):
        with pytest.raises(expected):
            classify_refusal(status, message, "ref", 5.0)
        return
    result = classify_refusal(status, message, "ref", 5.0)
    assert isinstance(result, expected)
    if isinstance(result, Pending):
        assert (result.ref, result.retry_after) == ("ref", 5.0)
    else:
        assert result.reason == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error_code":400,"error_message":"CA is offline."}', "CA is offline."),
        (b'{"status_code":202,"info_message":"waiting"}', "waiting"),
        (b"<html>Bad Gateway</html>", "HTTP 502: <html>Bad Gateway</html>"),
        (b"", "HTTP 502"),
    ],
)
def test_error_message(body: bytes, message: str) -> None:
    assert error_message(502, body) == message


def test_ref_round_trip_and_garbage() -> None:
    params = EnrollParams("acme-o1", "SERVER", "ACME", "IssuingCA", "MIIB", "/run/code")
    assert EnrollParams.from_ref(params.to_ref()) == params
    with pytest.raises(CAConfigError, match="not a pending EJBCA reference"):
        EnrollParams.from_ref("42")


@pytest.mark.parametrize(("doc", "message", "request_id"), [
    ({"status_code": 202, "request_id": 7, "link": "x/9/finalize"}, "", 7),
    ({"status_code": 202, "link": "https://e/ejbca/ejbca-rest-api/v1/certificate/42/finalize"},
     "Add End Entity Action have been added for approval", 42),
    ({"status_code": 202, "link": "https://e/ejbca/ejbca-rest-api/43/finalize"}, "", 43),
    (None, "Request with Id '44' is still waiting for approval", 44),
    ({"status_code": 202, "info_message": "waiting"}, "waiting for approval", None),
])
def test_approval_request_id(doc: object, message: str, request_id: int | None) -> None:
    assert approval_request_id(doc, message) == request_id


@pytest.mark.parametrize(("status", "message", "refused"), [
    (400, "Request with Id '5' has been rejected", True),
    (400, "Request with Id '5' has expired", True),
    (400, "Request with Id '5' could not be executed", True),
    (400, "Could not find request with Id '5'", False),  # not a denial: asked again
    (503, "has been rejected", False),
])
def test_classify_finalize(status: int, message: str, refused: bool) -> None:
    result = classify_finalize(status, message)
    assert (isinstance(result, Rejected) and message in result.reason) if refused else \
        result is None


def test_approval_ref_round_trip_and_garbage() -> None:
    ref = ApprovalRef(101, "acme-o1", "ab" * 32, enrollment_code_env="CODE")
    assert ref.to_ref().startswith("ejbca2.")
    assert ApprovalRef.from_ref(ref.to_ref()) == ref
    with pytest.raises(CAConfigError, match="not a pending EJBCA approval"):
        ApprovalRef.from_ref("ejbca2.!!!")
