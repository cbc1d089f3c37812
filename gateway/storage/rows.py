"""Mapping between domain objects and table rows, shared by every SQL store.

Times are stored as UNIX seconds (REAL / DOUBLE PRECISION) so that comparisons
are numeric; nested values (contacts, errors, validation records) as JSON text.

The decoders read a row by position, in the order of :data:`TABLES` (select
with :func:`columns`): a point lookup is decoded on every request, and reading
by name cost a scan of the column names per value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
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
    # Most lists written are empty (records, contacts): no encoder call for those.
    return "[]" if value == [] else jsontext.compact(value)


def _unjson(value: str | None) -> Any:
    return None if value is None else json.loads(value)


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


def to_row(model: Any) -> dict[str, Any]:
    """The column values of a model, in TABLES order."""
    if isinstance(model, Account):
        return {"id": model.id, "thumbprint": model.thumbprint, "jwk": _json(model.jwk),
                "status": model.status, "contact": _json(list(model.contact)),
                "tos_agreed": int(model.tos_agreed), "created_at": ts(model.created_at),
                "eab_kid": model.eab_kid}
    if isinstance(model, Order):
        return {"id": model.id, "account_id": model.account_id, "status": model.status,
                "identifiers": _json([i.to_json() for i in model.identifiers]),
                "authz_ids": _json(list(model.authz_ids)), "expires": ts(model.expires),
                "profile": model.profile, "created_at": ts(model.created_at),
                "not_before": ts(model.not_before), "not_after": ts(model.not_after),
                "error": _json(model.error), "certificate_id": model.certificate_id,
                "csr": model.csr_der, "approval": model.approval, "replaces": model.replaces}
    if isinstance(model, Authorization):
        return {"id": model.id, "account_id": model.account_id, "order_id": model.order_id,
                "identifier_type": model.identifier.type,
                "identifier_value": model.identifier.value, "status": model.status,
                "expires": ts(model.expires), "wildcard": int(model.wildcard)}
    if isinstance(model, Challenge):
        return {"id": model.id, "authz_id": model.authz_id, "type": model.type,
                "token": model.token, "status": model.status, "validated": ts(model.validated),
                "error": _json(model.error), "records": _json(list(model.records))}
    if isinstance(model, Certificate):
        return {"id": model.id, "order_id": model.order_id, "account_id": model.account_id,
                "serial": model.serial, "leaf_der": model.leaf_der, "chain_pem": model.chain_pem,
                "not_before": ts(model.not_before), "not_after": ts(model.not_after),
                "spki_sha256": model.spki_sha256, "ca": model.ca,
                "revoked_at": ts(model.revoked_at), "revocation_reason": model.revocation_reason}
    if isinstance(model, RenewalAdvice):
        return {"id": model.id, "advanced_at": ts(model.advanced_at), "reason": model.reason,
                "explanation_url": model.explanation_url}
    if isinstance(model, Job):
        return {"id": model.id, "order_id": model.order_id, "state": model.state,
                "attempts": model.attempts, "run_at": ts(model.run_at), "ca_ref": model.ca_ref,
                "last_error": model.last_error, "extra": _json(model.extra)}
    if isinstance(model, EabKey):
        return {"id": model.id, "hmac_key": model.hmac_key, "status": model.status,
                "profiles": _json(list(model.profiles)),
                "allowed_domains": _json(list(model.allowed_domains)),
                "reusable": int(model.reusable), "uses": model.uses,
                "created_at": ts(model.created_at), "note": model.note}
    if isinstance(model, ScepOtp | ScepTransaction):
        return _scep_row(model)
    raise TypeError(f"no table for {type(model).__name__}")


def _scep_row(model: ScepOtp | ScepTransaction) -> dict[str, Any]:
    if isinstance(model, ScepOtp):
        return {"id": model.id, "label": model.label, "names": _json(list(model.names)),
                "expires": ts(model.expires), "status": model.status,
                "created_at": ts(model.created_at), "used_by": model.used_by}
    return {"id": model.id, "order_id": model.order_id, "requester": model.requester,
            "signer_key_sha256": model.signer_key_sha256, "csr_sha256": model.csr_sha256,
            "created_at": ts(model.created_at), "status": model.status}


def columns(model: type, alias: str = "") -> str:
    """The SELECT list of a model's table, in the order the decoders read."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + c for c in TABLES[model][1])


def account(r: Row) -> Account:
    """An Account from its row."""
    id_, thumbprint, jwk, status, contact, tos_agreed, created_at, eab_kid = r
    return Account(id=id_, thumbprint=thumbprint, jwk=json.loads(jwk), status=status,
                   contact=tuple(json.loads(contact)), tos_agreed=bool(tos_agreed),
                   created_at=dt(created_at), eab_kid=eab_kid)


def order(r: Row) -> Order:
    """An Order from its row."""
    (id_, account_id, status, identifiers, authz_ids, expires, profile, created_at, not_before,
     not_after, error, certificate_id, csr, approval, replaces) = r
    return Order(id=id_, account_id=account_id, status=status,
                 identifiers=tuple(Identifier(i["type"], i["value"])
                                   for i in json.loads(identifiers)),
                 authz_ids=tuple(json.loads(authz_ids)), expires=_dt(expires),
                 profile=profile, created_at=_dt(created_at), not_before=dt(not_before),
                 not_after=dt(not_after), error=_unjson(error), certificate_id=certificate_id,
                 csr_der=bytes(csr) if csr is not None else None, approval=approval,
                 replaces=replaces)


def challenge(r: Row) -> Challenge:
    """A Challenge from its row."""
    id_, authz_id, type_, token, status, validated, error, records = r
    return Challenge(id=id_, authz_id=authz_id, type=type_, token=token, status=status,
                     validated=dt(validated), error=_unjson(error),
                     records=tuple(json.loads(records)) if records else ())


def authorization(r: Row, challenges: list[Challenge]) -> Authorization:
    """An Authorization from its row and its challenges."""
    id_, account_id, order_id, identifier_type, identifier_value, status, expires, wildcard = r
    return Authorization(id=id_, account_id=account_id, order_id=order_id,
                         identifier=Identifier(identifier_type, identifier_value),
                         status=status, expires=_dt(expires), wildcard=bool(wildcard),
                         challenges=tuple(challenges))


def certificate(r: Row) -> Certificate:
    """A Certificate from its row."""
    (id_, order_id, account_id, serial, leaf_der, chain_pem, not_before, not_after, spki_sha256,
     ca, revoked_at, revocation_reason) = r
    return Certificate(id=id_, order_id=order_id, account_id=account_id, serial=serial,
                       leaf_der=bytes(leaf_der), chain_pem=chain_pem,
                       not_before=_dt(not_before), not_after=_dt(not_after),
                       spki_sha256=spki_sha256, ca=ca, revoked_at=dt(revoked_at),
                       revocation_reason=revocation_reason)


def renewal_advice(r: Row) -> RenewalAdvice:
    """A RenewalAdvice from its row."""
    id_, advanced_at, reason, explanation_url = r
    return RenewalAdvice(id=id_, advanced_at=_dt(advanced_at), reason=reason,
                         explanation_url=explanation_url)


def job(r: Row) -> Job:
    """A Job from its row."""
    id_, order_id, state, attempts, run_at, ca_ref, last_error, extra = r
    return Job(id=id_, order_id=order_id, state=state, attempts=attempts, run_at=dt(run_at),
               ca_ref=ca_ref, last_error=last_error or "", extra=_unjson(extra) or {})


def eab_key(r: Row) -> EabKey:
    """An EabKey from its row."""
    id_, hmac_key, status, profiles, allowed_domains, reusable, uses, created_at, note = r
    return EabKey(id=id_, hmac_key=hmac_key, status=status,
                  profiles=tuple(json.loads(profiles)),
                  allowed_domains=tuple(json.loads(allowed_domains)), reusable=bool(reusable),
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


def scep_otp(r: Row) -> ScepOtp:
    """A ScepOtp from its row."""
    id_, label, names, expires, status, created_at, used_by = r
    return ScepOtp(id=id_, label=label, names=tuple(json.loads(names)), expires=_dt(expires),
                   status=status, created_at=dt(created_at), used_by=used_by)


def scep_transaction(r: Row) -> ScepTransaction:
    """A ScepTransaction from its row."""
    id_, order_id, requester, signer_key_sha256, csr_sha256, created_at, status = r
    return ScepTransaction(id=id_, order_id=order_id, requester=requester,
                           signer_key_sha256=signer_key_sha256, csr_sha256=csr_sha256,
                           created_at=_dt(created_at), status=status)
