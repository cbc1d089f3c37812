"""An operator's certificate search, from query parameters (API, console) or CLI options.

Both wire forms are a mapping of strings, so one parser serves them and the
same mistake gets the same answer everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from gateway.errors import ErrorKind, GatewayError
from gateway.model.records import CertificateQuery

# The search fields, as query parameters and as CLI options (with "-" for "_").
TEXT_FIELDS = ("name", "serial", "account", "profile", "ca", "state")
TIME_FIELDS = ("expires_after", "expires_before")
FIELDS = (*TEXT_FIELDS, *TIME_FIELDS, "expires_within_days", "limit")
MAX_TEXT = 255


def parse_when(text: str, key: str) -> datetime:
    """An ISO date or date-time, UTC unless it says otherwise."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise GatewayError(ErrorKind.MALFORMED, f"{key}: {text[:40]!r} is not an ISO date or "
                           "date-time (e.g. 2026-01-31 or 2026-01-31T12:00:00Z)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _number(text: str, key: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise GatewayError(ErrorKind.MALFORMED, f"{key} must be a whole number from {low} "
                           f"to {high}")
    return int(text)


def certificate_query(params: Mapping[str, str], now: datetime) -> CertificateQuery:
    """The search described by ``params``; unknown keys and oversize values are refused."""
    unknown = sorted(set(params) - set(FIELDS))
    if unknown:
        raise GatewayError(ErrorKind.MALFORMED, f"unknown search field {unknown[0][:40]!r}; "
                           f"use {', '.join(FIELDS)}")
    for key, value in params.items():
        if len(value) > MAX_TEXT:
            raise GatewayError(ErrorKind.MALFORMED, f"{key} is longer than {MAX_TEXT} "
                               "characters")
    times = {k: parse_when(params[k], k) for k in TIME_FIELDS if params.get(k)}
    if params.get("expires_within_days"):
        days = _number(params["expires_within_days"], "expires_within_days", 0, 3650)
        times.setdefault("expires_after", now)
        times["expires_before"] = now + timedelta(days=days)
    limit = _number(params["limit"], "limit", 1, 1000) if params.get("limit") else 100
    return CertificateQuery(**{k: params.get(k, "") for k in TEXT_FIELDS},
                            expires_after=times.get("expires_after"),
                            expires_before=times.get("expires_before"), limit=limit)


def period(params: Mapping[str, str]) -> tuple[datetime | None, datetime | None]:
    """``since`` and ``until`` (exclusive) of a report; either may be absent."""
    since, until = (parse_when(params[k][:MAX_TEXT], k) if params.get(k) else None
                    for k in ("since", "until"))
    if since is not None and until is not None and until <= since:
        raise GatewayError(ErrorKind.MALFORMED, "until must be later than since")
    return since, until
