"""Orders, authorizations and challenges as plain JSON objects: the reference that
gateway.acme.render's text forms must equal (as ``jsontext.compact``) byte for byte."""

from __future__ import annotations

from typing import Any

from gateway.acme import problems
from gateway.acme.render import PREFIX, Urls, rfc3339
from gateway.model.records import Authorization, Challenge, Order


def order(urls: Urls, o: Order) -> dict[str, Any]:
    """An order object."""
    body: dict[str, Any] = {
        "status": o.status,
        "expires": rfc3339(o.expires),
        "identifiers": [i.to_json() for i in o.identifiers],
        "authorizations": [urls.authz(a) for a in o.authz_ids],
        "finalize": urls.path(f"{PREFIX}/order/{o.id}/finalize"),
        "profile": o.profile,
    }
    if o.not_before:
        body["notBefore"] = rfc3339(o.not_before)
    if o.not_after:
        body["notAfter"] = rfc3339(o.not_after)
    if o.error:
        body["error"] = problems.from_stored(o.error)
    if o.certificate_id:
        body["certificate"] = urls.certificate(o.certificate_id)
    if o.replaces:
        body["replaces"] = o.replaces
    return body


def challenge(urls: Urls, c: Challenge) -> dict[str, Any]:
    """A challenge object."""
    body: dict[str, Any] = {"type": c.type, "url": urls.challenge(c.id), "status": c.status,
                            "token": c.token}
    if c.validated:
        body["validated"] = rfc3339(c.validated)
    if c.error:
        body["error"] = problems.from_stored(c.error)
    if c.records:
        body["validationRecord"] = list(c.records)
    return body


def authz(urls: Urls, a: Authorization) -> dict[str, Any]:
    """An authorization object (only the successful challenge once valid, as RFC 8555 §7.1.4)."""
    challs = a.challenges
    if a.status == "valid":
        challs = tuple(c for c in challs if c.status == "valid") or challs
    body: dict[str, Any] = {"identifier": a.identifier.to_json(), "status": a.status,
                            "expires": rfc3339(a.expires),
                            "challenges": [challenge(urls, c) for c in challs]}
    if a.wildcard:
        body["wildcard"] = True
    return body
