"""``check-config --probe``: open everything the configuration names, one line per item.

Parsing a config proves its syntax and that secret files can be read; it does
not prove that the HTTPS key matches its certificate, that a PKCS#12
passphrase is right, that an HSM token is there or that a CA answers. The
probe does what a start would do for each of them (without serving, and
without creating a local CA that does not exist yet) and reports each with
``ok`` or the failure, so an operator learns every problem in one run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from connectors.base import Connector, ConnectorError
from gateway import tls
from gateway.app import build_connectors, start_connector
from gateway.config import ServerSettings, Settings
from gateway.errors import ConfigError, StartError
from gateway.listeners import check_port_free

T = TypeVar("T")
# How long one CA may take to start and answer its health check.
CA_PROBE_SECONDS = 15.0


@dataclass(frozen=True)
class Finding:
    """One probed item and what went wrong with it (None: it works)."""

    item: str
    problem: str | None = None

    def line(self) -> str:
        """The report line."""
        return f"{self.item}: {'ok' if self.problem is None else 'FAILED: ' + self.problem}"


async def probe(settings: Settings) -> list[Finding]:
    """Probe the HTTPS certificate and every CA; one finding each."""
    findings = [*_ports(settings.server), _https(settings.server)]
    try:
        connectors = build_connectors(settings)
    except ConfigError as exc:  # a CA's table names a secret or file that cannot be read
        return [*findings, Finding(f"[{exc.key}]", exc.expected)]
    for name, connector in connectors.items():
        findings.append(await _ca(name, connector))
    return findings


def _ports(server: ServerSettings) -> list[Finding]:
    """Each configured port can be bound (it is in use while the gateway itself runs)."""
    found = []
    for key, port in (("https_port", server.https_port), ("http_port", server.http_port)):
        if port:
            try:
                check_port_free(server, port, key)
            except StartError as exc:
                found.append(Finding(f"[server] {key} {port}", str(exc)))
            else:
                found.append(Finding(f"[server] {key} {port}"))
    return found


def _https(server: ServerSettings) -> Finding:
    """The HTTPS certificate and key load, and belong together."""
    if not server.https_port:
        return Finding("[server] https_port = 0 (no HTTPS certificate to load)")
    cert, key = tls.server_cert_paths(server)
    item = f"[server] tls_cert_file {cert} / tls_key_file {key}"
    if server.tls_cert_file is None and not cert.exists():
        return Finding(item + " (self-signed, made on first start)")
    try:
        tls.https_context(server)
    except StartError as exc:
        return Finding(item, str(exc).split(": ", 1)[1])
    return Finding(item)


async def _ca(name: str, connector: Connector) -> Finding:
    """Start the connector (key, token, client certificate) and ask the CA if it is usable."""
    item = f"[cas.{name}]"
    if _not_created_yet(connector):
        return Finding(f"{item} (local CA, made on first start)")
    started = False
    try:
        started = await _bounded(lambda: start_connector(name, connector))
        await _bounded(connector.check)
    except StartError as exc:
        return Finding(item, str(exc).removeprefix(item).lstrip(": "))
    except (ConnectorError, OSError) as exc:
        return Finding(item, str(exc) or type(exc).__name__)
    except TimeoutError:
        return Finding(item, f"no answer within {CA_PROBE_SECONDS:g} s")
    finally:
        if started:
            await connector.aclose()
    return Finding(item)


async def _bounded(step: Callable[[], Awaitable[T]]) -> T:
    return await asyncio.wait_for(step(), CA_PROBE_SECONDS)


def _not_created_yet(connector: Connector) -> bool:
    """A file-key local CA before its first start: starting it here would create it."""
    from connectors.localca.connector import LocalCAConnector

    return (isinstance(connector, LocalCAConnector) and connector.settings.pkcs11 is None
            and not connector.cert_path.exists())
