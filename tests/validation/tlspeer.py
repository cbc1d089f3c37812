"""A blocking TLS peer in a thread that reports how the validator ended the connection.

asyncio's own TLS server cannot tell a close_notify from a dropped socket; this
peer reads with ``suppress_ragged_eofs=False``, so it can: ``"close_notify"``
when the client closed politely, ``"handshake: ..."`` or ``"read: ..."`` when it
did not (what Caddy and lego log as "handshake: EOF").
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

WAIT_SECONDS = 5.0


@dataclass
class TlsPeer:
    """The listening port and, once a connection has ended, how it ended."""

    port: int
    endings: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def ending(self) -> str:
        """How the first connection ended (waits for it)."""
        assert self.done.wait(WAIT_SECONDS), "the validator never connected"
        return self.endings[0]


def _serve_one(listener: socket.socket, context: ssl.SSLContext, reply: bytes,
               peer: TlsPeer) -> None:
    try:
        raw, _ = listener.accept()
    except OSError:  # the test ended without a connection
        return
    with raw:
        raw.settimeout(WAIT_SECONDS)
        try:
            conn = context.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
        except (OSError, ssl.SSLError) as exc:
            peer.endings.append(f"handshake: {exc}")
            peer.done.set()
            return
        with conn:
            peer.endings.append(_read_to_end(conn, reply))
            peer.done.set()


def _read_to_end(conn: ssl.SSLSocket, reply: bytes) -> str:
    try:
        if reply:
            conn.recv(65536)  # the request
            conn.sendall(reply)
        while conn.recv(65536):
            pass
    except (OSError, ssl.SSLError) as exc:
        return f"read: {exc}"
    return "close_notify"


@contextlib.contextmanager
def tls_peer(cert: tuple[Path, Path], alpn: list[str], reply: bytes = b"") -> Iterator[TlsPeer]:
    """Serve one TLS connection on 127.0.0.1; ``reply`` answers the first read, if given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    context.set_alpn_protocols(alpn)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = TlsPeer(port=listener.getsockname()[1])
        thread = threading.Thread(target=_serve_one, args=(listener, context, reply, peer),
                                  daemon=True)
        thread.start()
        yield peer
        thread.join(WAIT_SECONDS)
