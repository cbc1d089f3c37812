"""The listening sockets: bound with clear failures, guarded connections, enough descriptors.

A busy port or a missing permission ends the start with one line naming the
address and the ``[server]`` key, rather than a traceback. Every accepted
connection gets the guarded protocol (:mod:`gateway.protocol`); TLS handshakes
are bounded by ``tls_handshake_timeout_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
import ssl
from collections.abc import Callable

from aiohttp import web

from gateway.config import ServerSettings
from gateway.errors import StartError
from gateway.protocol import GuardedRequestHandler

log = logging.getLogger("gateway")

# Descriptors a process needs beyond its client connections: the store, CA
# sessions, validation lookups and connections, log files.
RESERVED_DESCRIPTORS = 256


def raise_descriptor_limit(max_connections: int) -> int:
    """Raise the soft descriptor limit to the hard one; log it and return it.

    Warns when the limit cannot hold ``max_connections`` plus the descriptors
    the gateway needs for itself: connections beyond it would fail at accept.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, wanted, exc)
    log.info("open-file limit: %d (hard limit %s)", soft,
             "unlimited" if hard == resource.RLIM_INFINITY else hard)
    if soft < max_connections + RESERVED_DESCRIPTORS:
        log.warning("the open-file limit %d is below [server] max_connections (%d) plus %d for "
                    "the gateway itself; raise the hard limit (LimitNOFILE=, ulimit -Hn) or lower "
                    "max_connections", soft, max_connections, RESERVED_DESCRIPTORS)
    return soft


class GuardedSite(web.TCPSite):
    """A TCP site whose connections use the guarded protocol and a TLS handshake bound."""

    def __init__(self, runner: web.AppRunner, factory: Callable[[], GuardedRequestHandler],
                 host: str, port: int, *, ssl_context: ssl.SSLContext | None,
                 handshake_timeout: float, reuse_port: bool | None) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context, reuse_port=reuse_port,
                         backlog=1024)
        self.address = (host, port)
        self._factory = factory
        self._handshake_timeout = handshake_timeout

    async def start(self) -> None:
        """Bind and listen (what TCPSite.start does, with our protocol and handshake bound)."""
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        host, port = self.address
        self._server = await loop.create_server(
            self._factory, host, port, ssl=self._ssl_context, backlog=self._backlog,
            reuse_port=self._reuse_port,
            ssl_handshake_timeout=self._handshake_timeout if self._ssl_context else None)


async def listen(site: GuardedSite, key: str) -> None:
    """Start ``site``; a failure to bind names the address and the ``[server]`` key."""
    try:
        await site.start()
    except OSError as exc:
        raise StartError(bind_failure(*site.address, key, exc)) from None


def check_port_free(server: ServerSettings, port: int, key: str) -> None:
    """Bind ``port`` alone for a moment: fail now if another process holds it.

    ``serve --workers N`` calls this before forking: the workers bind with
    SO_REUSEPORT, which another gateway's socket would silently share.
    """
    family = socket.AF_INET6 if ":" in server.listen else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((server.listen, port))
        except OSError as exc:
            raise StartError(bind_failure(server.listen, port, key, exc)) from None


def bind_failure(host: str, port: int, key: str, exc: OSError) -> str:
    """The one line that says which address and ``[server]`` key could not be bound."""
    why = os.strerror(exc.errno) if exc.errno else str(exc)
    hint = ("stop the process using it or choose another port" if exc.errno == 98
            else "check the address and the gateway user's permissions")
    return f"cannot listen on {host}:{port} ([server] {key}): {why}; {hint}"
