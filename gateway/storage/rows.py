"""Mapping between domain objects and table rows, shared by every SQL store.

Times are stored as UNIX seconds (REAL / DOUBLE PRECISION) so that comparisons
are numeric; nested values (contacts, errors, validation records) as JSON text.

The decoders read a row by position, in the order of :data:`TABLES` (select
with :func:`columns`): a point lookup is decoded on every request, and reading
by name cost a scan of the column names per value.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from gateway import jsontext
from gateway.model.records import (
    Account,
    AuditEvent,
    Authorization,
    Certificate,
    Challenge,
    EabKey,
    Identifier,
    Job,
    Order,
    RenewalAdvice,
    ScepOtp,
    ScepTransaction,
    restore,
)

Row = Sequence[Any]  # one table row, its values in TABLES order


def ts(value: datetime | None) -> float | None:
    """A datetime as UNIX seconds."""
    return value.timestamp() if value is not None else None


def dt(value: float | None) -> datetime | None:
    """UNIX seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _json(value: Any) -> str | None:
    if value is None:
        return None
    # Many values written are empty (records, contacts, an event's extra): no encoder
    # call for those.
    if value == []:
        return "[]"
    return "{}" if value == {} else jsontext.compact(value)


# The decoder's C scanner, called directly: stored JSON is text an encoder wrote, with
# nothing around the value, and json.loads spends more than the scan itself on a
# Python frame and two whitespace matches around it.
_scan: Callable[[str, int], tuple[Any, int]] = vars(json.JSONDecoder())["scan_once"]


def _parse(text: str) -> Any:
    """The value of a stored JSON column."""
    return _scan(text, 0)[0]


def _unjson(value: str | None) -> Any:
    return None if value is None else _parse(value)


# table name, primary key and column list of each model
TABLES: dict[type, tuple[str, tuple[str, ...]]] = {
    Account: ("accounts", ("id", "thumbprint", "jwk", "status", "contact", "tos_agreed",
                           "created_at", "eab_kid")),
    Order: ("orders", ("id", "account_id", "status", "identifiers", "authz_ids", "expires",
                       "profile", "created_at", "not_before", "not_after", "error",
                       "certificate_id", "csr", "approval", "replaces")),
    Authorization: ("authorizations", ("id", "account_id", "order_id", "identifier_type",
                                       "identifier_value", "status", "expires", "wildcard")),
    Challenge: ("challenges", ("id", "authz_id", "type", "token", "status", "validated",
                               "error", "records")),
    Certificate: ("certificates", ("id", "order_id", "account_id", "serial", "leaf_der",
                                   "chain_pem", "not_before", "not_after", "spki_sha256", "ca",
                                   "revoked_at", "revocation_reason")),
    Job: ("jobs", ("id", "order_id", "state", "attempts", "run_at", "ca_ref", "last_error",
                   "extra")),
    RenewalAdvice: ("renewal_advice", ("id", "advanced_at", "reason", "explanation_url")),
    EabKey: ("eab_keys", ("id", "hmac_key", "status", "profiles", "allowed_domains", "reusable",
                          "uses", "created_at", "note")),
    ScepOtp: ("scep_otps", ("id", "label", "names", "expires", "status", "created_at",
                            "used_by")),
    ScepTransaction: ("scep_transactions", ("id", "order_id", "requester", "signer_key_sha256",
                                            "csr_sha256", "created_at", "status")),
}

# The audit table is append-only and hash-chained; the store fills seq, prev_hash and hash.
AUDIT_TABLE = "audit_events"
AUDIT_COLUMNS = ("seq", "at", "event", "actor", "identifiers", "profile", "ca", "result",
                 "detail", "request_id", "source", "extra", "prev_hash", "hash")


def audit_values(e: AuditEvent) -> tuple[Any, ...]:
    """The stored values of an audit event, without seq and the chain columns."""
    return (ts(e.at), e.event, e.actor, _json(list(e.identifiers)), e.profile, e.ca, e.result,
            e.detail, e.request_id, e.source, _json(e.extra))


def _account_values(m: Account) -> tuple[Any, ...]:
    return (m.id, m.thumbprint, _json(m.jwk), m.status, _json(list(m.contact)),
            int(m.tos_agreed), ts(m.created_at), m.eab_kid)


def _order_values(m: Order) -> tuple[Any, ...]:
    return (m.id, m.account_id, m.status, _json([i.to_json() for i in m.identifiers]),
            _json(list(m.authz_ids)), ts(m.expires), m.profile, ts(m.created_at),
            ts(m.not_before), ts(m.not_after), _json(m.error), m.certificate_id, m.csr_der,
            m.approval, m.replaces)


def _authz_values(m: Authorization) -> tuple[Any, ...]:
    return (m.id, m.account_id, m.order_id, m.identifier.type, m.identifier.value, m.status,
            ts(m.expires), int(m.wildcard))


def _challenge_values(m: Challenge) -> tuple[Any, ...]:
    return (m.id, m.authz_id, m.type, m.token, m.status, ts(m.validated), _json(m.error),
            _json(list(m.records)))


def _certificate_values(m: Certificate) -> tuple[Any, ...]:
    return (m.id, m.order_id, m.account_id, m.serial, m.leaf_der, m.chain_pem,
            ts(m.not_before), ts(m.not_after), m.spki_sha256, m.ca, ts(m.revoked_at),
            m.revocation_reason)


def _job_values(m: Job) -> tuple[Any, ...]:
    return (m.id, m.order_id, m.state, m.attempts, ts(m.run_at), m.ca_ref, m.last_error,
            _json(m.extra))


def _advice_values(m: RenewalAdvice) -> tuple[Any, ...]:
    return (m.id, ts(m.advanced_at), m.reason, m.explanation_url)


def _eab_values(m: EabKey) -> tuple[Any, ...]:
    return (m.id, m.hmac_key, m.status, _json(list(m.profiles)), _json(list(m.allowed_domains)),
            int(m.reusable), m.uses, ts(m.created_at), m.note)


def _otp_values(m: ScepOtp) -> tuple[Any, ...]:
    return (m.id, m.label, _json(list(m.names)), ts(m.expires), m.status, ts(m.created_at),
            m.used_by)


def _transaction_values(m: ScepTransaction) -> tuple[Any, ...]:
    return (m.id, m.order_id, m.requester, m.signer_key_sha256, m.csr_sha256,
            ts(m.created_at), m.status)


# Each model's column values in TABLES order (one call per write: no name lookups).
_VALUES: dict[type, Callable[[Any], tuple[Any, ...]]] = {
    Account: _account_values, Order: _order_values, Authorization: _authz_values,
    Challenge: _challenge_values, Certificate: _certificate_values, Job: _job_values,
    RenewalAdvice: _advice_values, EabKey: _eab_values, ScepOtp: _otp_values,
    ScepTransaction: _transaction_values,
}


def values(model: Any) -> tuple[Any, ...]:
    """The column values of a model, in TABLES order."""
    encode = _VALUES.get(type(model))
    if encode is None:
        raise TypeError(f"no table for {type(model).__name__}")
    return encode(model)


# What an Update rewrites of an order, authorization or challenge: the columns their
# state machines' moves (gateway.model.records) and the approval step set. The others
# are fixed when the row is inserted; rewriting them at every move re-encoded their
# JSON and moved their entries in indexes (orders_account, orders_expires,
# authorizations_expires, challenges_authz) for nothing.
_MOVED: dict[type, tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]] = {
    Order: (("status", "error", "certificate_id", "csr", "approval"),
            lambda m: (m.status, _json(m.error), m.certificate_id, m.csr_der, m.approval)),
    Authorization: (("status",), lambda m: (m.status,)),
    Challenge: (("status", "validated", "error", "records"),
                lambda m: (m.status, ts(m.validated), _json(m.error), _json(list(m.records)))),
}


def updated(model: Any) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """The columns an Update of ``model`` rewrites, and their values.

    Every column but ``id``, except for the models whose changes are moves
    (see ``_MOVED``), of which only the columns a move may set.
    """
    moved = _MOVED.get(type(model))
    if moved is not None:
        return moved[0], moved[1](model)
    return TABLES[type(model)][1][1:], values(model)[1:]


def columns(model: type, alias: str = "") -> str:
    """The SELECT list of a model's table, in the order the decoders read."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + c for c in TABLES[model][1])


def account(r: Row) -> Account:
    """An Account from its row."""
    id_, thumbprint, jwk, status, contact, tos_agreed, created_at, eab_kid = r
    return restore(Account, id=id_, thumbprint=thumbprint, jwk=_parse(jwk), status=status,
                   contact=tuple(_parse(contact)), tos_agreed=bool(tos_agreed),
                   created_at=dt(created_at), eab_kid=eab_kid)


def _identifier(value: dict[str, str]) -> Identifier:
    return restore(Identifier, type=value["type"], value=value["value"])


def order(r: Row) -> Order:
    """An Order from its row."""
    (id_, account_id, status, identifiers, authz_ids, expires, profile, created_at, not_before,
     not_after, error, certificate_id, csr, approval, replaces) = r
    return restore(Order, id=id_, account_id=account_id, status=status,
                   identifiers=tuple(map(_identifier, _parse(identifiers))),
                   authz_ids=tuple(_parse(authz_ids)), expires=_dt(expires),
                   profile=profile, created_at=_dt(created_at), not_before=dt(not_before),
                   not_after=dt(not_after), error=_unjson(error),
                   certificate_id=certificate_id,
                   csr_der=bytes(csr) if csr is not None else None, approval=approval,
                   replaces=replaces)


def challenge(r: Row) -> Challenge:
    """A Challenge from its row."""
    id_, authz_id, type_, token, status, validated, error, records = r
    return restore(Challenge, id=id_, authz_id=authz_id, type=type_, token=token,
                   status=status, validated=dt(validated), error=_unjson(error),
                   # Most challenges have no records yet: no decoder call for those.
                   records=tuple(_parse(records)) if records and records != "[]" else ())


def authorization(r: Row, challenges: list[Challenge]) -> Authorization:
    """An Authorization from its row and its challenges."""
    id_, account_id, order_id, identifier_type, identifier_value, status, expires, wildcard = r
    return restore(Authorization, id=id_, account_id=account_id, order_id=order_id,
                   identifier=restore(Identifier, type=identifier_type,
                                      value=identifier_value),
                   status=status, expires=_dt(expires), wildcard=bool(wildcard),
                   challenges=tuple(challenges))


def certificate(r: Row) -> Certificate:
    """A Certificate from its row."""
    (id_, order_id, account_id, serial, leaf_der, chain_pem, not_before, not_after, spki_sha256,
     ca, revoked_at, revocation_reason) = r
    return restore(Certificate, id=id_, order_id=order_id, account_id=account_id,
                   serial=serial, leaf_der=bytes(leaf_der), chain_pem=chain_pem,
                   not_before=_dt(not_before), not_after=_dt(not_after),
                   spki_sha256=spki_sha256, ca=ca, revoked_at=dt(revoked_at),
                   revocation_reason=revocation_reason)


def renewal_advice(r: Row) -> RenewalAdvice:
    """A RenewalAdvice from its row."""
    id_, advanced_at, reason, explanation_url = r
    return restore(RenewalAdvice, id=id_, advanced_at=_dt(advanced_at), reason=reason,
                   explanation_url=explanation_url)


def job(r: Row) -> Job:
    """A Job from its row."""
    id_, order_id, state, attempts, run_at, ca_ref, last_error, extra = r
    return restore(Job, id=id_, order_id=order_id, state=state, attempts=attempts,
                   run_at=dt(run_at), ca_ref=ca_ref, last_error=last_error or "",
                   extra=_unjson(extra) or {})


def eab_key(r: Row) -> EabKey:
    """An EabKey from its row."""
    id_, hmac_key, status, profiles, allowed_domains, reusable, uses, created_at, note = r
    return restore(EabKey, id=id_, hmac_key=hmac_key, status=status,
                   profiles=tuple(_parse(profiles)),
                   allowed_domains=tuple(_parse(allowed_domains)), reusable=bool(reusable),
                   uses=uses, created_at=dt(created_at), note=note)


# An authorization's columns come first in a joined row, then its challenge's.
_AUTHZ_WIDTH = len(TABLES[Authorization][1])


def joined_authorizations(found: Iterable[Row]) -> list[Authorization]:
    """Authorizations from rows of an authorization LEFT JOIN its challenges, in row order.

    Each row holds an authorization's columns then one challenge's (all None
    for an authorization without challenges), selected with :func:`columns`.
    """
    heads: dict[str, Row] = {}
    by_authz: dict[str, list[Challenge]] = {}
    for r in found:
        authz_id = r[0]
        if authz_id not in heads:
            heads[authz_id] = r[:_AUTHZ_WIDTH]
            by_authz[authz_id] = []
        if r[_AUTHZ_WIDTH] is not None:  # the LEFT JOIN found a challenge
            by_authz[authz_id].append(challenge(r[_AUTHZ_WIDTH:]))
    return [authorization(r, by_authz[i]) for i, r in heads.items()]


# How many columns a packed authorization takes (see packed_authorization).
PACKED_WIDTH = _AUTHZ_WIDTH + 1


def packed_authorization(r: Row) -> Authorization:
    """An Authorization from a row of its columns and its challenges packed in one text.

    The last column holds each challenge (in row order) as id, type, token,
    status, validated in integer microseconds, error and records (JSON), parted
    by US (0x1f), challenges parted by RS (0x1e); an empty field is None (see
    ``sqlite.AUTHZ_PACKED``). One row per authorization: every column the
    sqlite3 module hands over costs a GIL release and a Python object, and a
    row per challenge repeated the authorization's columns on each.
    """
    authz_id, packed = r[0], r[_AUTHZ_WIDTH]
    return authorization(r[:_AUTHZ_WIDTH], [
        _packed_challenge(authz_id, *c.split("\x1f")) for c in packed.split("\x1e")]
        if packed else [])


def packed_authorization_and_order(r: Row) -> tuple[Authorization, Order | None]:
    """A packed authorization and the order whose columns follow it (None: no such order)."""
    found = order(r[PACKED_WIDTH:]) if r[PACKED_WIDTH] is not None else None
    return packed_authorization(r), found


def _packed_challenge(authz_id: str, id_: str, type_: str, token: str, status: str,
                      validated: str, error: str, records: str) -> Challenge:
    return restore(Challenge, id=id_, authz_id=authz_id, type=type_, token=token,
                   status=status, validated=_from_micros(validated) if validated else None,
                   error=_parse(error) if error else None,
                   # Most challenges have no records yet: no decoder call for those.
                   records=tuple(_parse(records)) if records and records != "[]" else ())


def _from_micros(value: str) -> datetime:
    # Integer microseconds, as UNIX seconds: the same float ts() stored for any
    # time with whole microseconds (the division is correctly rounded, like the
    # one datetime.timestamp makes).
    return datetime.fromtimestamp(int(value) / 1_000_000, UTC)


def scep_otp(r: Row) -> ScepOtp:
    """A ScepOtp from its row."""
    id_, label, names, expires, status, created_at, used_by = r
    return restore(ScepOtp, id=id_, label=label, names=tuple(_parse(names)),
                   expires=_dt(expires), status=status, created_at=dt(created_at),
                   used_by=used_by)


def scep_transaction(r: Row) -> ScepTransaction:
    """A ScepTransaction from its row."""
    id_, order_id, requester, signer_key_sha256, csr_sha256, created_at, status = r
    return restore(ScepTransaction, id=id_, order_id=order_id, requester=requester,
                   signer_key_sha256=signer_key_sha256, csr_sha256=csr_sha256,
                   created_at=_dt(created_at), status=status)
