"""Inventory records as JSON, the same for the admin API and ``--json`` in the CLI."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC as _UTC
from datetime import datetime
from typing import Any

from gateway.core.approvals import actor_of
from gateway.core.compliance import IssuanceVerdict
from gateway.core.inventory import CertificateRecord, IssuedCertificate
from gateway.model.records import Account


def when(value: datetime | None) -> str | None:
    """A time as RFC 3339 UTC, second precision."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def certificate(issued: IssuedCertificate) -> dict[str, Any]:
    """A certificate as listed: who asked, for which names, from which CA, its state."""
    cert, order = issued.certificate, issued.order
    return {"id": cert.id, "serial": cert.serial, "state": issued.state,
            "names": [i.value for i in order.identifiers], "profile": order.profile,
            "ca": cert.ca, "requester": actor_of(order), "account": cert.account_id,
            "order": order.id, "not_before": when(cert.not_before),
            "not_after": when(cert.not_after), "revoked_at": when(cert.revoked_at),
            "revocation_reason": cert.revocation_reason}


def _history_row(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("seq", "event", "actor", "result", "detail", "ca", "source")
    entry = {k: row.get(k) for k in keep}
    entry["at"] = when(datetime.fromtimestamp(row["at"], tz=_UTC)) if row.get("at") else None
    entry["extra"] = json.loads(row["extra"]) if row.get("extra") else {}
    return entry


def certificate_record(record: CertificateRecord) -> dict[str, Any]:
    """One certificate in full: chain (PEM, leaf first) and audit history."""
    return {**certificate(record.issued), "chain_pem": record.issued.certificate.chain_pem,
            "history": [_history_row(r) for r in record.history]}


COMPLIANCE_COLUMNS = ("issued_at", "serial", "profile", "ca", "requester", "names",
                      "validity_days", "policy_recorded", "approval_required", "approved_by",
                      "verdict", "violations")


def verdict(v: IssuanceVerdict) -> dict[str, Any]:
    """One issuance of the compliance report."""
    return {"issued_at": when(v.issued_at), "serial": v.serial, "profile": v.profile,
            "ca": v.ca, "requester": v.requester, "names": list(v.names),
            "validity_days": v.validity_days, "policy_recorded": v.policy_recorded,
            "approval_required": v.approval_required, "approved_by": v.approved_by,
            "verdict": v.verdict, "violations": list(v.violations)}


def _cell(value: Any) -> str:
    text = "; ".join(value) if isinstance(value, list) else str(value).lower() \
        if isinstance(value, bool) else "" if value is None else str(value)
    # A spreadsheet runs a cell that starts like a formula: quote it as text.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def compliance_csv(verdicts: list[IssuanceVerdict]) -> str:
    """The compliance report as CSV (RFC 4180), one row per issuance."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COMPLIANCE_COLUMNS)
    for v in verdicts:
        row = verdict(v)
        writer.writerow([_cell(row[c]) for c in COMPLIANCE_COLUMNS])
    return out.getvalue()


def account(acct: Account) -> dict[str, Any]:
    """An ACME account as an operator sees it (never its key, only the thumbprint)."""
    return {"id": acct.id, "status": acct.status, "contact": list(acct.contact),
            "created": when(acct.created_at), "eab_kid": acct.eab_kid,
            "thumbprint": acct.thumbprint}
