"""Wire forms the renderer shares: timestamps, and the URLs of a base made once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.acme.render import Urls, rfc3339, urls_at


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
