"""Helpers that start a simulator and build the matching connector, for the connector tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from connectors.adcs.connector import CertsrvConnector, CertsrvSettings
from connectors.base import CAProfile, IssueRequest
from connectors.ejbca.connector import EjbcaConnector, EjbcaSettings
from tests.acmeclient import AcmeClient
from tests.fakes.certsrv import CertsrvSimulator
from tests.fakes.ejbca import EjbcaSimulator
from tests.fakes.pki import make_csr

FAST = {"retries": 1, "retry_backoff_seconds": 0.0, "timeout_seconds": 5.0}


def request(
    names: list[str], params: Mapping[str, str], request_id: str = "order-1", cn: str | None = None
) -> IssueRequest:
    """An IssueRequest for DNS ``names`` with profile parameters ``params``."""
    csr, _ = make_csr(names, cn)
    return IssueRequest(request_id, csr, CAProfile("test", params=dict(params)), tuple(names))


def certsrv_options(sim: CertsrvSimulator, auth: str, **extra: Any) -> dict[str, Any]:
    """The [cas.adcs] table that points at ``sim``."""
    options: dict[str, Any] = {
        "type": "adcs",
        "url": sim.url,
        "auth": auth,
        "ca_bundle_file": str(sim.trust_file),
        **FAST,
    }
    if auth in {"basic", "ntlm", "negotiate"}:
        options |= {"username": sim.username, "password_file": str(sim.password_file)}
    return options | extra


@asynccontextmanager
async def certsrv(
    tmp: Path, auth: str = "basic", mode: str = "auto", **extra: Any
) -> AsyncIterator[tuple[CertsrvSimulator, CertsrvConnector]]:
    """A running certsrv simulator and a started connector for it."""
    # certsrv offers both Negotiate and NTLM; the simulator's "ntlm" answers either
    sim = CertsrvSimulator(tmp / "sim", mode=mode, auth="ntlm" if auth == "negotiate" else auth)
    await sim.start()
    try:
        options = certsrv_options(sim, auth, **extra)
        settings = CertsrvSettings.from_options(options, tmp, "adcs")
        connector = CertsrvConnector("adcs", settings, None)
        await connector.start()
        try:
            yield sim, connector
        finally:
            await connector.aclose()
    finally:
        await sim.stop()


def ejbca_options(sim: EjbcaSimulator, **extra: Any) -> dict[str, Any]:
    """The [cas.ejbca] table that points at ``sim`` with an administrator's certificate."""
    cert, key = sim.client_files()
    options: dict[str, Any] = {
        "type": "ejbca",
        "url": sim.url,
        "ca_bundle_file": str(sim.trust_file),
        "client_cert_file": str(cert),
        "client_key_file": str(key),
        "ca_name": sim.ca_name,
        "certificate_profile": "SERVER",
        "end_entity_profile": "ACME",
        **FAST,
    }
    return options | extra


@asynccontextmanager
async def ejbca(
    tmp: Path, mode: str = "auto", approval_style: str = "202", **extra: Any
) -> AsyncIterator[tuple[EjbcaSimulator, EjbcaConnector]]:
    """A running EJBCA simulator and a started connector for it."""
    sim = EjbcaSimulator(tmp / "ejbca", mode=mode, approval_style=approval_style)
    await sim.start()
    try:
        settings = EjbcaSettings.from_options(ejbca_options(sim, **extra), tmp, "ejbca")
        connector = EjbcaConnector("ejbca", settings, None)
        await connector.start()
        try:
            yield sim, connector
        finally:
            await connector.aclose()
    finally:
        await sim.stop()


async def acme_through(aiohttp_client: Any, tmp: Path, connector: Any, ca_type: str,
                       ca_params: Mapping[str, str] | None = None, clock: Any = None,
                       **tables: Any) -> tuple[Any, AcmeClient]:
    """A gateway whose default profile issues through ``connector``, and a registered client.

    ``tables`` are extra TOML tables (e.g. ``jobs={...}``); the app is the first item.
    """
    from gateway import config
    from gateway.app import create_app
    from tests.acme.support import FakeValidator

    doc: dict[str, Any] = {
        "server": {"data_dir": str(tmp / "gw")},
        "cas": {connector.name: {"type": ca_type}},
        "profiles": {"default": {"ca": connector.name, "ca_params": dict(ca_params or {})}},
        **tables,
    }
    app = create_app(config.parse(doc, "connector-test"), validator=FakeValidator(),
                     connectors={connector.name: connector}, clock=clock)
    http = await aiohttp_client(app)
    client = AcmeClient(http.session, str(http.make_url("/acme/directory")))
    await client.start()
    await client.register()
    return app, client
