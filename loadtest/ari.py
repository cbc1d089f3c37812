"""ACME Renewal Information (RFC 9773) as a client reads it: certID and the window.

After an order the load generator may ask ``renewalInfo`` about the certificate
it just received, as ARI-aware clients do, and count what the window says:
inside the certificate's validity and not yet open (the normal case), or
already open (the server wants a renewal now), or nonsense.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from cryptography import x509


def _unpadded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def cert_id(leaf: x509.Certificate) -> str:
    """``base64url(AKI keyIdentifier) "." base64url(serial DER content)`` (RFC 9773 §4.1)."""
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    if aki.key_identifier is None:
        raise ValueError("the certificate's authority key identifier has no keyIdentifier")
    serial = leaf.serial_number
    # The DER INTEGER's content octets: big-endian, with a zero byte before a set high bit.
    octets = serial.to_bytes(serial.bit_length() // 8 + 1, "big")
    return f"{_unpadded(aki.key_identifier)}.{_unpadded(octets)}"


def _instant(text: Any) -> dt.datetime:
    if not isinstance(text, str):
        raise ValueError("suggestedWindow times must be RFC 3339 strings")
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def judge(info: dict[str, Any], leaf: x509.Certificate, now: dt.datetime) -> str:
    """``ari_scheduled``, ``ari_due`` or ``ari_bad_window``: what the answer asks for."""
    window = info.get("suggestedWindow")
    try:
        if not isinstance(window, dict):
            raise ValueError("no suggestedWindow")
        start, end = _instant(window.get("start")), _instant(window.get("end"))
    except ValueError:
        return "ari_bad_window"
    if end <= start:
        return "ari_bad_window"
    if start <= now:
        return "ari_due"
    inside = leaf.not_valid_before_utc <= start and end <= leaf.not_valid_after_utc
    return "ari_scheduled" if inside else "ari_bad_window"


async def ask(http: Any, directory_url: str, leaf: x509.Certificate) -> dict[str, Any]:
    """renewalInfo of one certificate, as a client would ask: certID, window and verdict."""
    async with http.get(directory_url) as resp:
        base = (await resp.json()).get("renewalInfo")
    if not base:
        raise ValueError(f"{directory_url} offers no renewalInfo (RFC 9773)")
    ident = cert_id(leaf)
    async with http.get(f"{base}/{ident}") as resp:
        info = await resp.json(content_type=None)
        retry_after = resp.headers.get("Retry-After", "")
        if resp.status != 200:
            raise ValueError(f"renewalInfo of {ident}: {resp.status} {info.get('detail', '')}")
    return {"cert_id": ident, **info, "retry_after": retry_after,
            "verdict": judge(info, leaf, dt.datetime.now(dt.UTC))}
