"""How the certsrv connector authenticates its HTTP requests.

Two transports, one shape (:meth:`request` → :class:`Reply`):

* :class:`SimpleTransport` – Basic auth and/or a TLS client certificate: every
  request stands alone, one pooled session.
* :class:`SpnegoTransport` – NTLM, Negotiate and Kerberos. NTLM authenticates
  the TCP connection, so all legs of a handshake must travel on one kept-alive
  connection. Each "lane" is a session whose connector holds exactly one
  connection; a request borrows a lane, sends, and when the server answers 401
  runs the handshake on that same connection. IIS keeps a connection
  authenticated, so later requests on a lane usually skip the handshake.
  pyspnego builds the tokens; the TLS channel binding (RFC 5929
  ``tls-server-end-point``, the hash of the server certificate) is taken from
  the connection itself so servers with Extended Protection accept it.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import spnego
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from spnego.channel_bindings import GssChannelBindings
from yarl import URL

from connectors.base import CAConfigError

_PROTOCOLS = {"ntlm": "ntlm", "negotiate": "negotiate", "kerberos": "kerberos"}


@dataclass(frozen=True)
class Reply:
    """A fully read certsrv answer."""

    status: int
    content_type: str
    body: bytes
    www_authenticate: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The body as text (certsrv pages are ASCII/Latin-1 or UTF-8)."""
        return self.body.decode("utf-8", "replace")


class Transport(Protocol):
    """Sends one authenticated request to certsrv."""

    async def request(self, method: str, url: str, data: dict[str, str] | None = None) -> Reply:
        """Send and read the whole answer."""
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...


def channel_bindings(cert_der: bytes) -> GssChannelBindings:
    """RFC 5929 tls-server-end-point bindings of a server certificate."""
    cert = x509.load_der_x509_certificate(cert_der)
    algorithm = cert.signature_hash_algorithm
    # RFC 5929 §4.1: MD5 and SHA-1 certificates are hashed with SHA-256.
    if algorithm is None or isinstance(algorithm, hashes.MD5 | hashes.SHA1):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(cert_der)
    return GssChannelBindings(application_data=b"tls-server-end-point:" + digest.finalize())


class _PeerCertConnector(aiohttp.TCPConnector):
    """A connector that remembers the server certificate of the last connection it handed out.

    A lane's connector holds one connection, so this is the certificate of the
    connection the handshake runs on (aiohttp releases small responses before
    the caller could look at their connection).
    """

    peer_cert: bytes | None = None

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:  # noqa: ASYNC109
        conn = await super().connect(req, traces, timeout)
        transport = conn.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport else None
        if isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
            self.peer_cert = ssl_object.getpeercert(binary_form=True)
        return conn


async def _send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    data: dict[str, str] | None,
    headers: dict[str, str],
) -> Reply:
    """One request, read fully so that its connection goes back to the pool."""
    async with session.request(
        method, url, data=data, headers=headers, allow_redirects=False
    ) as resp:
        body = await resp.read()
        challenges = tuple(resp.headers.getall("WWW-Authenticate", []))
    return Reply(resp.status, resp.content_type, body, challenges)


def _challenge(reply: Reply, scheme: str) -> bytes | None:
    """The token the server sent for ``scheme`` in WWW-Authenticate, if any."""
    for value in reply.www_authenticate:
        name, _, token = value.partition(" ")
        if name.lower() == scheme.lower() and token.strip():
            return base64.b64decode(token.strip())
    return None


def _schemes(reply: Reply) -> set[str]:
    return {v.partition(" ")[0].lower() for v in reply.www_authenticate}


class SimpleTransport:
    """Basic auth and/or a TLS client certificate over one pooled session."""

    def __init__(self, session: aiohttp.ClientSession, basic: tuple[str, str] | None) -> None:
        self._session = session
        self._authorization = ""
        if basic:
            pair = f"{basic[0]}:{basic[1]}".encode()
            self._authorization = "Basic " + base64.b64encode(pair).decode()

    async def request(self, method: str, url: str, data: dict[str, str] | None = None) -> Reply:
        """Send with the Basic credentials (if any)."""
        headers = {"Authorization": self._authorization} if self._authorization else {}
        return await _send(self._session, method, url, data, headers)

    async def aclose(self) -> None:
        """Close the session."""
        await self._session.close()


@dataclass(frozen=True, repr=False)
class SpnegoCredentials:
    """Who authenticates; ``repr`` hides the password."""

    protocol: str  # ntlm | negotiate | kerberos
    username: str | None
    password: str | None
    send_channel_bindings: bool = True

    def __repr__(self) -> str:
        return f"SpnegoCredentials(protocol={self.protocol!r}, username={self.username!r})"


class SpnegoTransport:
    """NTLM / Negotiate / Kerberos with every handshake leg on one kept-alive connection."""

    def __init__(
        self,
        credentials: SpnegoCredentials,
        ssl_context: ssl.SSLContext,
        timeout: aiohttp.ClientTimeout,
        headers: dict[str, str],
        lanes: int,
    ) -> None:
        self._credentials = credentials
        self._ssl = ssl_context
        self._timeout = timeout
        self._headers = headers
        self._free: asyncio.Queue[aiohttp.ClientSession] = asyncio.Queue()
        self._all: list[aiohttp.ClientSession] = []
        self._max_lanes = lanes

    @asynccontextmanager
    async def _lane(self) -> AsyncIterator[aiohttp.ClientSession]:
        if self._free.empty() and len(self._all) < self._max_lanes:
            connector = _PeerCertConnector(ssl=self._ssl, limit=1, keepalive_timeout=60)
            lane = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, headers=self._headers
            )
            self._all.append(lane)
        else:
            lane = await self._free.get()
        try:
            yield lane
        finally:
            self._free.put_nowait(lane)

    async def request(self, method: str, url: str, data: dict[str, str] | None = None) -> Reply:
        """Send; on 401 run the handshake on the same connection and send again."""
        async with self._lane() as lane:
            reply = await _send(lane, method, url, data, {})
            if reply.status != 401:
                return reply
            peer = (
                lane.connector.peer_cert if isinstance(lane.connector, _PeerCertConnector) else None
            )
            return await self._handshake(lane, method, url, data, reply, peer)

    async def _handshake(
        self,
        lane: aiohttp.ClientSession,
        method: str,
        url: str,
        data: dict[str, str] | None,
        reply: Reply,
        peer: bytes | None,
    ) -> Reply:
        creds = self._credentials
        scheme = (
            "Negotiate" if "negotiate" in _schemes(reply) and creds.protocol != "ntlm" else "NTLM"
        )
        if scheme.lower() not in _schemes(reply):
            raise CAConfigError(
                f"certsrv does not offer {creds.protocol} authentication (it offers "
                f"{', '.join(sorted(_schemes(reply))) or 'none'}); change auth in the CA's settings"
            )
        bindings = channel_bindings(peer) if peer and creds.send_channel_bindings else None
        context = spnego.client(
            creds.username,
            creds.password,
            hostname=URL(url).host or "unspecified",
            service="HTTP",
            channel_bindings=bindings,
            protocol=_PROTOCOLS[creds.protocol],
        )
        token = context.step()
        for _ in range(4):  # NTLM needs two legs, Kerberos one; more means a loop
            auth = {"Authorization": f"{scheme} {base64.b64encode(token or b'').decode()}"}
            reply = await _send(lane, method, url, data, auth)
            challenge = _challenge(reply, scheme)
            if reply.status != 401 or challenge is None or context.complete:
                break
            token = context.step(challenge)
        if reply.status == 401:
            raise CAConfigError(
                f"certsrv refused the {creds.protocol} credentials of {creds.username!r}; check "
                "username and password_file/password_env (and that the account may enroll)"
            )
        return reply

    async def aclose(self) -> None:
        """Close every lane."""
        for lane in self._all:
            await lane.close()
        self._all.clear()
