"""Config parsing: defaults, and errors that name the file, the key and what is expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import config
from gateway.errors import ConfigError


def test_embedded_defaults() -> None:
    settings = config.load(None)
    assert settings.server.https_port == 8443 and settings.server.listen == "127.0.0.1"
    assert settings.storage_url().endswith("gateway-data/gateway.db")
    assert settings.cas["local"].type == "local"
    assert settings.profiles["default"].ca == "local"
    assert settings.validation.http01_port == 80 and settings.validation.tlsalpn01_port == 443


def test_the_example_config_is_valid() -> None:
    example = Path(__file__).parent.parent / "config" / "gateway.toml"
    settings = config.load(example)
    assert settings.profiles


@pytest.mark.parametrize("doc,key,fragment", [
    ({"server": {"https_port": "x"}}, "server.https_port", "integer"),
    ({"server": {"https_port": 70000}}, "server.https_port", "65535"),
    ({"server": {"listen": "localhost"}}, "server.listen", "IP address"),
    ({"server": {"typo": 1}}, "server.typo", "unknown option"),
    ({"validation": {"resolvers": ["dns.example:53"]}}, "validation.resolvers", "HOST:PORT"),
    ({"validation": {"blocked_networks": ["10.0.0.0/33"]}}, "validation.blocked_networks", "CIDR"),
    ({"validation": {"challenge_types": ["http-02"]}}, "validation.challenge_types", "unknown"),
    ({"storage": {"url": "mysql://x"}}, "storage.url", "sqlite"),
    ({"cas": {"x": {"type": "magic"}}}, "cas.x.type", "local, adcs, ejbca"),
    ({"profiles": {"p": {"ca": "nope"}}}, "profiles.p.ca", "names no CA"),
    ({"profiles": {"p": {"ekus": ["bogus"]}}}, "profiles.p.ekus", "serverAuth"),
    ({"acme": {"default_profile": "nope"}}, "acme.default_profile", "names no profile"),
    ({"unknown_section": {}}, "unknown_section", "unknown section"),
])
def test_errors_name_file_and_key(doc: dict, key: str, fragment: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as err:
        config.parse(doc, "/etc/gw.toml")
    assert err.value.key == key and err.value.source == "/etc/gw.toml"
    assert fragment in str(err.value)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(bad)


def test_cli_check_config_reports_the_error(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    bad = tmp_path / "gw.toml"
    bad.write_text("[server]\nhttps_port = -1\n")
    assert main(["check-config", "--config", str(bad)]) == 2
    assert "server.https_port" in capsys.readouterr().err


@pytest.mark.parametrize(("ca_options", "warned"), [
    ({"type": "adcs"}, True),
    ({"type": "adcs", "send_validity": False}, False),
    ({"type": "local"}, False),
])
def test_check_config_warns_that_an_adcs_template_may_decide_validity(
        ca_options: dict, warned: bool) -> None:  # type: ignore[type-arg]
    settings = config.parse({"cas": {"corp": ca_options},
                             "acme": {"default_profile": "web"},
                             "profiles": {"web": {"ca": "corp", "validity_days": 30}}}, "t")
    found = config.warnings(settings)
    assert bool(found) == warned
    if warned:
        assert "EDITF_ATTRIBUTEENDDATE" in found[0] and "profiles.web" in found[0]


@pytest.mark.parametrize(("doc", "key"), [
    ({"jobs": {"breaker_threshold": -1}}, "jobs.breaker_threshold"),
    ({"profiles": {"p": {"max_wait_hours": -2}}}, "profiles.p.max_wait_hours"),
])
def test_budget_options_are_checked(doc: dict, key: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as err:
        config.parse(doc, "t")
    assert err.value.key == key
