"""Connector types by name: each builds its connector; an unknown one names the known."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors import registry
from connectors.base import CAConfigError
from connectors.registry import Site
from gateway import config
from gateway.errors import ConfigError


def test_each_type_builds_its_connector(tmp_path: Path) -> None:
    site = Site(tmp_path, "http://127.0.0.1:8080")
    for name in ("gw.pem", "gw.key"):  # parsing checks the files exist; nothing reads them yet
        (tmp_path / name).write_text("")
    cert, key = str(tmp_path / "gw.pem"), str(tmp_path / "gw.key")
    built = {
        "local": registry.build("local", "ca1", {}, site),
        "adcs": registry.build("adcs", "ca2", {"url": "https://ca.example/certsrv",
                                               "auth": "client_cert",
                                               "client_cert_file": cert,
                                               "client_key_file": key}, site),
        "ejbca": registry.build("ejbca", "ca3", {
            "url": "https://ejbca.example/ejbca/ejbca-rest-api", "ca_name": "Issuing",
            "client_cert_file": cert, "client_key_file": key}, site),
    }
    assert {t: type(c).__name__ for t, c in built.items()} == {
        "local": "LocalCAConnector", "adcs": "CertsrvConnector", "ejbca": "EjbcaConnector"}
    assert set(built) == set(registry.TYPES)


def test_the_local_ca_takes_the_shared_ledger_of_several_nodes(tmp_path: Path) -> None:
    site = Site(tmp_path, shared_ledger_url="postgresql://db/gw", shared_ledger_password="pw")
    connector = registry.build("local", "ca1", {}, site)
    assert connector.settings.ledger_url == "postgresql://db/gw"  # type: ignore[attr-defined]


def test_an_unknown_type_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(CAConfigError, match="unknown CA type 'vault'; known: local, adcs, ejbca"):
        registry.build("vault", "x", {}, Site(tmp_path))
    with pytest.raises(ConfigError) as err:
        config.parse({"cas": {"x": {"type": "vault"}}}, "gw.toml")
    assert err.value.key == "cas.x.type" and "local, adcs, ejbca" in str(err.value)
