"""The [jobs], [admin], [audit] tables and the new profile options: parsed, or refused by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway import config
from gateway.errors import ConfigError


def _parse(**tables: Any) -> config.Settings:
    return config.parse(tables, "gw.toml")


def test_defaults() -> None:
    settings = _parse()
    assert settings.jobs == config.JobSettings()
    assert settings.admin.token is None and settings.audit.max_validity_days == 398
    profile = settings.profiles["default"]
    assert (profile.min_ec_bits, profile.rfc2818, profile.allow_key_reuse) == (256, False, True)


def test_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_ADMIN", "t0ken")
    settings = _parse(jobs={"retry_base_seconds": 1, "retry_cap_seconds": 8, "max_attempts": 4,
                            "poll_base_seconds": 3, "poll_cap_seconds": 30},
                      admin={"token_env": "GW_ADMIN", "webhook_url": "https://hook.test/x"},
                      audit={"max_validity_days": 200},
                      profiles={"p": {"ca": "local", "min_ec_bits": 384, "rfc2818": True,
                                      "allow_key_reuse": False}},
                      acme={"default_profile": "p"})
    assert settings.jobs.max_attempts == 4 and settings.jobs.retry_cap_seconds == 8.0
    assert settings.admin.token == "t0ken" and settings.admin.webhook_url == "https://hook.test/x"
    assert settings.profiles["p"].min_ec_bits == 384 and not settings.profiles["p"].allow_key_reuse


@pytest.mark.parametrize(("tables", "message"), [
    ({"jobs": {"retry_base_seconds": 10, "retry_cap_seconds": 5}},
     "[jobs.retry_cap_seconds] must be at least retry_base_seconds"),
    ({"jobs": {"max_attempts": 0}}, "[jobs.max_attempts] expected an integer from 1 to 1000"),
    ({"jobs": {"retry_base": 1}}, "[jobs.retry_base] unknown option"),
    ({"admin": {"token": "inline"}}, "[admin.token] secrets are never inline"),
    ({"admin": {"webhook_url": "ftp://x"}}, "[admin.webhook_url] expected an http:// or https://"),
    ({"profiles": {"default": {"min_ec_bits": 521}}},
     "[profiles.default.min_ec_bits] expected an integer from 256 to 384"),
])
def test_errors_name_the_key(tables: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _parse(**tables)
    assert message in str(err.value)
