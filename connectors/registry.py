"""Connector types by name: the one place a new kind of CA is added.

``[cas.NAME] type = "..."`` names an entry of :data:`TYPES`; its builder parses
the rest of the table itself (connectors never import the gateway) and returns
the connector. Adding a CA type is one subpackage and one line here; a type
that is not listed is a configuration error naming the known ones.

What the deployment tells every builder (where the gateway's data lives, the
base URL of its CRL/OCSP listener, the database several nodes share) comes as
a :class:`Site`; each builder takes what it needs from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from connectors.base import CAConfigError, Connector


@dataclass(frozen=True)
class Site:
    """The deployment a connector is built for."""

    data_dir: Path
    public_base_url: str = ""  # CRL and OCSP URLs written into certificates
    # Several nodes on one database: the local CA keeps its ledger there too.
    shared_ledger_url: str = ""
    shared_ledger_password: str | None = field(default=None, repr=False)


Builder = Callable[[str, Mapping[str, Any], Site], Connector]


def _local(name: str, options: Mapping[str, Any], site: Site) -> Connector:
    from connectors.localca.connector import LocalCAConnector
    from connectors.localca.settings import LocalCASettings

    opts = dict(options)
    opts.setdefault("public_base_url", site.public_base_url)
    settings = LocalCASettings.from_options(opts, site.data_dir, name)
    if site.shared_ledger_url and not settings.ledger_url:
        # Nodes on several hosts sign with one key: they share its ledger, in the store.
        settings = replace(settings, ledger_url=site.shared_ledger_url,
                           ledger_password=site.shared_ledger_password)
    return LocalCAConnector(name, settings)


def _adcs(name: str, options: Mapping[str, Any], site: Site) -> Connector:
    from connectors.adcs.connector import CertsrvConnector, CertsrvSettings

    return CertsrvConnector(name, CertsrvSettings.from_options(options, site.data_dir, name))


def _ejbca(name: str, options: Mapping[str, Any], site: Site) -> Connector:
    from connectors.ejbca.connector import EjbcaConnector, EjbcaSettings

    return EjbcaConnector(name, EjbcaSettings.from_options(options, site.data_dir, name))


# Builders import their subpackage only when a CA of their type is configured.
TYPES: Mapping[str, Builder] = {"local": _local, "adcs": _adcs, "ejbca": _ejbca}


def build(ca_type: str, name: str, options: Mapping[str, Any], site: Site) -> Connector:
    """The connector of one ``[cas.NAME]`` table; CAConfigError for an unknown type."""
    builder = TYPES.get(ca_type)
    if builder is None:
        raise CAConfigError(f"unknown CA type {ca_type!r}; known: {', '.join(TYPES)}")
    return builder(name, options, site)
