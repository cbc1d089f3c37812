"""The [scep] section: defaults, and errors that name the file and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway import config
from gateway.errors import ConfigError
from gateway.scep.settings import parse


def _settings(tmp_path: Path, scep: dict[str, Any]) -> config.Settings:
    return config.parse({"server": {"data_dir": str(tmp_path)}, "scep": scep}, "gw.toml")


def test_no_section_serves_no_label(tmp_path: Path) -> None:
    scep = parse(config.parse({"server": {"data_dir": str(tmp_path)}}, "gw.toml"))
    assert not scep.labels and scep.label(None) is None
    assert scep.ra_key_file == tmp_path / "scep-ra.key"


def test_static_password_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    scep = parse(_settings(tmp_path, {"default_label": "r", "otp_lifetime_seconds": 600,
                                      "labels": {"r": {"password_file": str(secret),
                                                       "names": ["*.R.example"]}}}))
    label = scep.label(None)
    assert label is not None and label.gate.static_password == "s3cret"
    assert label.gate.names == ("*.r.example",) and label.gate.otp_lifetime_seconds == 600
    assert label.renewal and not label.legacy_algorithms


@pytest.mark.parametrize(("scep", "key", "words"), [
    ({"labels": {"a": {"names": ["x"]}}}, "scep.labels.a.password_file", "needs a challenge"),
    ({"labels": {"a": {"password": "inline"}}}, "scep.labels.a.password", "never inline"),
    ({"labels": {"a": {"password_env": "HOME"}}}, "scep.labels.a.names", "bind it to names"),
    ({"labels": {"a": {"one_time_passwords": True, "profile": "nope"}}},
     "scep.labels.a.profile", "names no profile"),
    ({"labels": {"pkiclient.exe": {"one_time_passwords": True}}}, "scep.labels.pkiclient.exe",
     "not pkiclient.exe"),
    ({"labels": {"a": {"one_time_passwords": True, "colour": 1}}}, "scep.labels.a.colour",
     "unknown option"),
    ({"default_label": "b"}, "scep.default_label", "names no label"),
    ({"otp_lifetime_seconds": 1}, "scep.otp_lifetime_seconds", "from 60"),
    ({"labels": {"a": {"one_time_passwords": True, "names": ["re:("]}}}, "scep.labels.a.names",
     "not a regular expression"),
])
def test_errors_name_the_key(tmp_path: Path, scep: dict[str, Any], key: str,
                             words: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(_settings(tmp_path, scep))
    assert key in str(err.value) and words in str(err.value) and "gw.toml" in str(err.value)
