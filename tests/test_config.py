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


def test_audit_anchor_files_default_to_the_data_directory() -> None:
    settings = config.parse({"server": {"data_dir": "/srv/gw"}}, "gw.toml")
    assert settings.anchor_key_file() == Path("/srv/gw/audit-anchor.key")
    assert settings.anchor_log_file() == Path("/srv/gw/audit-anchors.jsonl")
    assert settings.audit.anchor_interval_seconds == 60.0
    moved = config.parse({"audit": {"anchor_key_file": "/etc/gw/anchor.key",
                                    "anchor_log_file": "/var/log/gw/anchors.jsonl"}}, "gw.toml")
    assert moved.anchor_key_file() == Path("/etc/gw/anchor.key")
    assert moved.anchor_log_file() == Path("/var/log/gw/anchors.jsonl")


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
    ({"storage": {"url": "postgresql://gw:pw@db/gw"}}, "storage.url", "password_file"),
    ({"storage": {"password": "pw"}}, "storage.password", "never inline"),
    ({"storage": {"pool_size": 0}}, "storage.pool_size", "from 1 to 1000"),
    ({"cas": {"x": {"type": "magic"}}}, "cas.x.type", "local, adcs, ejbca"),
    ({"profiles": {"p": {"ca": "nope"}}}, "profiles.p.ca", "names no CA"),
    ({"profiles": {"p": {"ekus": ["bogus"]}}}, "profiles.p.ekus", "serverAuth"),
    ({"acme": {"default_profile": "nope"}}, "acme.default_profile", "names no profile"),
    ({"unknown_section": {}}, "unknown_section", "unknown section"),
    ({"audit": {"anchor_interval_seconds": 0}}, "audit.anchor_interval_seconds", "≥ 0.01"),
    ({"audit": {"anchor_webhook_url": "ftp://x"}}, "audit.anchor_webhook_url", "http://"),
    ({"audit": {"anchor_key_fingerprint": "abc"}}, "audit.anchor_key_fingerprint",
     "audit anchor-key"),
    ({"audit": {"anchor_key_file": 1}}, "audit.anchor_key_file", "a string"),
    ({"profiles": {"p": {"renewal_window_end": 1.5}}}, "profiles.p.renewal_window_end",
     "fraction"),
    ({"profiles": {"p": {"renewal_window_start": 0.9, "renewal_window_end": 0.5}}},
     "profiles.p.renewal_window_end", "greater than renewal_window_start"),
    ({"profiles": {"p": {"renewal_window_start": -0.1}}}, "profiles.p.renewal_window_start",
     "≥ 0"),
    ({"acme": {"renewal_info_retry_after_seconds": 5}}, "acme.renewal_info_retry_after_seconds",
     "60"),
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


def test_connection_limits_have_safe_defaults_and_are_checked(tmp_path: Path) -> None:
    server = config.parse({}, "test.toml").server
    assert (server.header_timeout_seconds, server.body_timeout_seconds,
            server.keepalive_timeout_seconds, server.tls_handshake_timeout_seconds) == (
        20.0, 30.0, 60.0, 10.0)
    assert (server.max_connections, server.max_connections_per_address) == (10000, 256)
    with pytest.raises(ConfigError, match="server.max_connections_per_address"):
        config.parse({"server": {"max_connections": 10, "max_connections_per_address": 11}},
                     "test.toml")
    with pytest.raises(ConfigError, match="server.header_timeout_seconds"):
        config.parse({"server": {"header_timeout_seconds": 0}}, "test.toml")


def test_postgres_storage_reads_its_password_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_DB_PASSWORD", "s3cret")
    settings = config.parse({"storage": {"url": "postgresql://gw@db:5432/gw", "pool_size": 4,
                                         "password_env": "GW_DB_PASSWORD"}}, "/etc/gw.toml")
    assert settings.storage.password == "s3cret" and settings.storage.pool_size == 4
    assert "s3cret" not in repr(settings.storage)


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
