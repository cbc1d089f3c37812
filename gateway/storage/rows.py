"""Mapping between domain objects and table rows, shared by every SQL store.

Times are stored as UNIX seconds (REAL / DOUBLE PRECISION) so that comparisons
are numeric; nested values (contacts, errors, validation records) as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.core.models import (
    Account,
    AuditEvent,
    Authorization,
    Certificate,
    Challenge,
    EabKey,
    Identifier,
    Job,
    Order,
)

Row = Mapping[str, Any]


def ts(value: datetime | None) -> float | None:
    """A datetime as UNIX seconds."""
    return value.timestamp() if value is not None else None


def dt(value: float | None) -> datetime | None:
    """UNIX seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _unjson(value: str | None) -> Any:
    return None if value is None else json.loads(value)


# table name, primary key and column list of each model
TABLES: dict[type, tuple[str, tuple[str, ...]]] = {
    Account: ("accounts", ("id", "thumbprint", "jwk", "status", "contact", "tos_agreed",
                           "created_at", "eab_kid")),
    Order: ("orders", ("id", "account_id", "status", "identifiers", "authz_ids", "expires",
                       "profile", "created_at", "not_before", "not_after", "error",
                       "certificate_id", "csr", "approval")),
    Authorization: ("authorizations", ("id", "account_id", "order_id", "identifier_type",
                                       "identifier_value", "status", "expires", "wildcard")),
    Challenge: ("challenges", ("id", "authz_id", "type", "token", "status", "validated",
                               "error", "records")),
    Certificate: ("certificates", ("id", "order_id", "account_id", "serial", "leaf_der",
                                   "chain_pem", "not_before", "not_after", "spki_sha256", "ca",
                                   "revoked_at", "revocation_reason")),
    Job: ("jobs", ("id", "order_id", "state", "attempts", "run_at", "ca_ref", "last_error",
                   "extra")),
    EabKey: ("eab_keys", ("id", "hmac_key", "status", "profiles", "allowed_domains", "reusable",
                          "uses", "created_at", "note")),
}

# The audit table is append-only and hash-chained; the store fills seq, prev_hash and hash.
AUDIT_TABLE = "audit_events"
AUDIT_COLUMNS = ("seq", "at", "event", "actor", "identifiers", "profile", "ca", "result",
                 "detail", "request_id", "source", "extra", "prev_hash", "hash")


def audit_values(e: AuditEvent) -> tuple[Any, ...]:
    """The stored values of an audit event, without seq and the chain columns."""
    return (ts(e.at), e.event, e.actor, _json(list(e.identifiers)), e.profile, e.ca, e.result,
            e.detail, e.request_id, e.source, _json(e.extra))


def eab_key(r: Row) -> EabKey:
    """An EabKey from its row."""
    return EabKey(id=r["id"], hmac_key=r["hmac_key"], status=r["status"],
                  profiles=tuple(json.loads(r["profiles"])),
                  allowed_domains=tuple(json.loads(r["allowed_domains"])),
                  reusable=bool(r["reusable"]), uses=r["uses"], created_at=dt(r["created_at"]),
                  note=r["note"])


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
                "csr": model.csr_der, "approval": model.approval}
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
    raise TypeError(f"no table for {type(model).__name__}")


def account(r: Row) -> Account:
    """An Account from its row."""
    return Account(id=r["id"], thumbprint=r["thumbprint"], jwk=json.loads(r["jwk"]),
                   status=r["status"], contact=tuple(json.loads(r["contact"])),
                   tos_agreed=bool(r["tos_agreed"]), created_at=dt(r["created_at"]),
                   eab_kid=r["eab_kid"])


def order(r: Row) -> Order:
    """An Order from its row."""
    return Order(id=r["id"], account_id=r["account_id"], status=r["status"],
                 identifiers=tuple(Identifier(i["type"], i["value"])
                                   for i in json.loads(r["identifiers"])),
                 authz_ids=tuple(json.loads(r["authz_ids"])), expires=_dt(r["expires"]),
                 profile=r["profile"], created_at=_dt(r["created_at"]),
                 not_before=dt(r["not_before"]), not_after=dt(r["not_after"]),
                 error=_unjson(r["error"]), certificate_id=r["certificate_id"],
                 csr_der=bytes(r["csr"]) if r["csr"] is not None else None,
                 approval=r["approval"])


def challenge(r: Row) -> Challenge:
    """A Challenge from its row."""
    return Challenge(id=r["id"], authz_id=r["authz_id"], type=r["type"], token=r["token"],
                     status=r["status"], validated=dt(r["validated"]),
                     error=_unjson(r["error"]), records=tuple(_unjson(r["records"]) or ()))


def authorization(r: Row, challenges: list[Challenge]) -> Authorization:
    """An Authorization from its row and its challenges."""
    return Authorization(id=r["id"], account_id=r["account_id"], order_id=r["order_id"],
                         identifier=Identifier(r["identifier_type"], r["identifier_value"]),
                         status=r["status"], expires=_dt(r["expires"]),
                         wildcard=bool(r["wildcard"]), challenges=tuple(challenges))


def certificate(r: Row) -> Certificate:
    """A Certificate from its row."""
    return Certificate(id=r["id"], order_id=r["order_id"], account_id=r["account_id"],
                       serial=r["serial"], leaf_der=bytes(r["leaf_der"]),
                       chain_pem=r["chain_pem"], not_before=_dt(r["not_before"]),
                       not_after=_dt(r["not_after"]), spki_sha256=r["spki_sha256"], ca=r["ca"],
                       revoked_at=dt(r["revoked_at"]), revocation_reason=r["revocation_reason"])


def job(r: Row) -> Job:
    """A Job from its row."""
    return Job(id=r["id"], order_id=r["order_id"], state=r["state"], attempts=r["attempts"],
               run_at=dt(r["run_at"]), ca_ref=r["ca_ref"], last_error=r["last_error"] or "",
               extra=_unjson(r["extra"]) or {})
