"""The ``[retention]`` table: documented defaults, fractions of days, errors naming the key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gateway import config
from gateway.errors import ConfigError

EXAMPLE = Path(__file__).parent.parent.parent / "config" / "gateway.toml"


def test_the_example_config_documents_the_defaults() -> None:
    assert config.load(EXAMPLE).retention == config.parse({}, "x").retention


def test_embedded_defaults_keep_every_kind_for_its_documented_window() -> None:
    retention = config.parse({}, "x").retention
    assert retention.enabled
    assert {k: w.days for k, w in retention.windows.items()} == {
        "jobs": 7, "certificates": 365, "orders": 30, "authorizations": 30,
        "valid_authorizations": 0}


def test_windows_may_be_fractions_of_a_day() -> None:
    retention = config.parse({"retention": {"orders_days": 0.5}}, "x").retention
    assert retention.windows["orders"] == timedelta(hours=12)


@pytest.mark.parametrize("table,key,fragment", [
    ({"orders_days": -1}, "retention.orders_days", "≥ 0"),
    ({"certificates_days": "forever"}, "retention.certificates_days", "a number"),
    ({"batch_size": 0}, "retention.batch_size", "from 1"),
    ({"interval_seconds": 0.5}, "retention.interval_seconds", "≥ 1"),
    ({"audit_days": 30}, "retention.audit_days", "unknown option"),
])
def test_errors_name_file_and_key(table: dict, key: str, fragment: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as err:
        config.parse({"retention": table}, "gw.toml")
    text = str(err.value)
    assert "gw.toml" in text and key in text and fragment in text
