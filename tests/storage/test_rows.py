"""Row encoding and decoding: every field round-trips, and decoders set every field."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from gateway.model.records import (
    VALID,
    Account,
    Certificate,
    EabKey,
    Identifier,
    Job,
    RenewalAdvice,
    ScepOtp,
    ScepTransaction,
)
from gateway.model.store import Update
from gateway.storage import rows
from gateway.storage.sqltext import statements
from tests.storage.models import NOW, authz, order

_ORDER = dataclasses.replace(
    order("o1"), identifiers=(Identifier("dns", "a.example"), Identifier("ip", "192.0.2.1")),
    authz_ids=("z1", "z2"), not_before=NOW, not_after=NOW + timedelta(days=1),
    error={"kind": "malformed", "detail": "x"}, certificate_id="c1", csr_der=b"\x30\x00",
    approval="pending", replaces="AQ.AQ")
_AUTHZ = authz("z1", "o1")
_CHALLENGE = _AUTHZ.challenges[0].moved("processing").moved(
    VALID, validated=NOW, records=({"attempt": 1, "url": "http://a.example/"},))

CASES: list[tuple[Any, Callable[[rows.Row], Any]]] = [
    (Account(id="a1", thumbprint="tp", jwk={"kty": "EC"}, contact=("mailto:a@example.com",),
             tos_agreed=True, created_at=NOW, eab_kid="k1"), rows.account),
    (_ORDER, rows.order),
    (order("o2"), rows.order),
    (_CHALLENGE, rows.challenge),
    (_AUTHZ.challenges[0], rows.challenge),
    (Certificate(id="c1", order_id="o1", account_id="a1", serial="1f", leaf_der=b"\x30",
                 chain_pem="PEM", not_before=NOW, not_after=NOW + timedelta(days=1),
                 spki_sha256="ab", ca="local", revoked_at=NOW, revocation_reason=1),
     rows.certificate),
    (Job(id="j1", order_id="o1", state="waiting", attempts=2, run_at=NOW, ca_ref="r",
         last_error="e", extra={"policy": "checked"}), rows.job),
    (RenewalAdvice(id="c1", advanced_at=NOW, reason="incident"), rows.renewal_advice),
    (EabKey(id="k1", hmac_key="h", profiles=("p",), allowed_domains=("*.example",),
            reusable=True, uses=3, created_at=NOW, note="n"), rows.eab_key),
    (ScepOtp(id="s1", label="l", names=("a.example",), expires=NOW, created_at=NOW,
             used_by="t"), rows.scep_otp),
    (ScepTransaction(id="l/t", order_id="o1", requester="r", signer_key_sha256="ab",
                     csr_sha256="cd", created_at=NOW), rows.scep_transaction),
]


@pytest.mark.parametrize(("model", "decode"), CASES, ids=lambda c: type(c).__name__)
def test_a_row_decodes_to_the_record_it_was_encoded_from(
        model: Any, decode: Callable[[rows.Row], Any]) -> None:
    decoded = decode(rows.values(model))
    assert decoded == model
    # Decoders skip __init__: each must still set every field, and nothing else.
    assert set(vars(decoded)) == {f.name for f in dataclasses.fields(model)}


def test_an_authorization_decodes_with_its_challenges_in_row_order() -> None:
    two = dataclasses.replace(_AUTHZ, challenges=(_AUTHZ.challenges[0], _CHALLENGE))
    joined = [rows.values(two)[:8] + rows.values(c) for c in two.challenges]
    (decoded,) = rows.joined_authorizations(joined)
    assert decoded == two
    assert set(vars(decoded)) == {f.name for f in dataclasses.fields(two)}


def test_an_update_of_a_move_rewrites_only_what_moves_may_set() -> None:
    (sql, params, must_change), = statements(Update(_ORDER, expect="ready"))
    assert sql == ("UPDATE orders SET status = ?, error = ?, certificate_id = ?, csr = ?, "
                   "approval = ? WHERE id = ? AND status = ?")
    assert params == ("pending", '{"kind":"malformed","detail":"x"}', "c1", b"\x30\x00",
                      "pending", "o1", "ready")
    assert must_change


def test_an_update_of_other_records_rewrites_every_column() -> None:
    job = CASES[6][0]
    (sql, params, _), = statements(Update(job))
    assert sql == ("UPDATE jobs SET order_id = ?, state = ?, attempts = ?, run_at = ?, "
                   "ca_ref = ?, last_error = ?, extra = ? WHERE id = ?")
    assert params == (*rows.values(job)[1:], "j1")


def test_json_columns_written_with_spaces_decode_as_well() -> None:
    # Rows written before the compact encoder (json.dumps' default separators).
    values = list(rows.values(_ORDER))
    values[3] = json.dumps([i.to_json() for i in _ORDER.identifiers])
    values[4] = json.dumps(list(_ORDER.authz_ids))
    values[10] = json.dumps(_ORDER.error)
    assert ", " in values[3] and rows.order(values) == _ORDER
