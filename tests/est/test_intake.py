"""EST goes through the same intake as ACME finalize: the CSR judged once, requested once."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core import csr as csrs
from tests.est.support import ALICE, Gateway, b64, ec_key, make_csr, request


async def test_an_enrollment_parses_its_csr_once_and_is_requested_once(
        gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    parses: list[bytes] = []
    parse = csrs.parse_csr

    def counting(der: bytes) -> Any:
        parses.append(der)
        return parse(der)

    monkeypatch.setattr(csrs, "parse_csr", counting)
    status, _, body = await request(gw, "POST", "/basic/simpleenroll",
                                    b64(make_csr(ec_key(), cn="once.example.net")), ALICE)
    assert status == 200, body
    assert len(parses) == 1  # enroll() judged it; the CA job did not judge it again
    rows = await gw.core.est.store.audit_rows(0, 100)  # type: ignore[attr-defined]
    events = [r["event"] for r in rows if r["actor"] == "est:user:alice"]
    assert events.count("requested") == 1 and events.count("issued") == 1
    assert events.index("requested") < events.index("issued")
