"""Wire forms the renderer shares: timestamps, the URLs of a base made once, and resources
rendered straight to JSON text."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway import jsontext
from gateway.acme.render import (
    Urls,
    authz_text,
    challenge_text,
    order_text,
    rfc3339,
    urls_at,
)
from gateway.model.records import Authorization, Challenge, Identifier, Order
from tests.acme.reference_render import authz as render_authz
from tests.acme.reference_render import challenge as render_challenge
from tests.acme.reference_render import order as render_order


@pytest.mark.parametrize("value,text", [
    (datetime(2026, 12, 5, 1, 2, 3, tzinfo=UTC), "2026-12-05T01:02:03Z"),
    (datetime(2026, 1, 9, 23, 59, 59, 999_999, tzinfo=UTC), "2026-01-09T23:59:59Z"),
    (datetime(2030, 6, 1, 0, 0, 0), "2030-06-01T00:00:00Z"),
])
def test_rfc3339_is_whole_seconds_with_z(value: datetime, text: str) -> None:
    assert rfc3339(value) == text
    assert rfc3339(value) == value.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_rfc3339_keeps_the_clock_time_of_an_offset() -> None:
    value = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(value) == value.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_urls_of_a_base_are_made_once() -> None:
    urls = urls_at("https://gw.example:8443")
    assert urls is urls_at("https://gw.example:8443")
    assert urls == Urls("https://gw.example:8443")
    assert urls.index_link == '<https://gw.example:8443/acme/directory>;rel="index"'
    assert urls.account_id("https://gw.example:8443/acme/acct/abc") == "abc"
    assert urls.account_id("https://other.example/acme/acct/abc") is None
    assert urls.account_id("https://gw.example:8443/acme/acct/abc/orders") is None


_NOW = datetime(2026, 12, 5, 1, 2, 3, 456_789, tzinfo=UTC)
_PENDING = Challenge(id="c1", authz_id="z1", type="http-01", token="tok-_1")
_VALID = _PENDING.moved("processing").moved(
    "valid", validated=_NOW, records=({"url": "http://a.example/\u00e9\"", "port": 80},))
_FAILED = replace(_PENDING, id="c2", type="dns-01").moved("invalid", error={
    "kind": "connection", "detail": "refused \"x\" \u2028",
    "subproblems": [{"kind": "dns", "detail": "d", "identifier": {"type": "dns",
                                                                   "value": "a.example"}}]})
_AUTHZ = Authorization(id="z1", account_id="a1", order_id="o1",
                       identifier=Identifier("dns", "a.example"), status="pending",
                       expires=_NOW, challenges=(_PENDING, replace(_PENDING, id="c3")))


@pytest.mark.parametrize("authz", [
    _AUTHZ,
    replace(_AUTHZ, status="valid", challenges=(_VALID, replace(_PENDING, id="c3"))),
    replace(_AUTHZ, status="invalid", challenges=(_FAILED,)),
    replace(_AUTHZ, wildcard=True, identifier=Identifier("dns", "b.example")),
    replace(_AUTHZ, challenges=()),
], ids=["pending", "valid", "invalid", "wildcard", "bare"])
@pytest.mark.parametrize("base", ["https://gw.example:8443", 'http://odd"host\\'])
def test_resources_rendered_as_text_are_the_encoded_objects(
        authz: Authorization, base: str) -> None:
    urls = Urls(base)
    assert authz_text(urls, authz) == jsontext.compact(render_authz(urls, authz))
    for chall in authz.challenges:
        assert challenge_text(urls, chall) == jsontext.compact(render_challenge(urls, chall))


_ORDER = Order(id="o1", account_id="a1", status="pending",
               identifiers=(Identifier("dns", "a.example"), Identifier("ip", "192.0.2.1")),
               authz_ids=("z1", "z2"), expires=_NOW, profile="default", created_at=_NOW)


@pytest.mark.parametrize("order", [
    _ORDER,
    replace(_ORDER, status="valid", not_before=_NOW, not_after=_NOW + timedelta(days=1),
            certificate_id="cert1", replaces="AQ.Ag"),
    replace(_ORDER, status="invalid", error=_FAILED.error, profile="odd \"profile\" \u00e9"),
    replace(_ORDER, identifiers=(), authz_ids=()),
], ids=["pending", "valid", "invalid", "empty"])
@pytest.mark.parametrize("base", ["https://gw.example:8443", 'http://odd"host\\'])
def test_orders_rendered_as_text_are_the_encoded_objects(order: Order, base: str) -> None:
    urls = Urls(base)
    assert order_text(urls, order) == jsontext.compact(render_order(urls, order))
