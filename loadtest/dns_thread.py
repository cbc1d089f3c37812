"""The DNS responder on its own thread, answering while the event loop is busy.

A run that polls hard (hundreds of orders, 50 ms apart) keeps the load
generator's event loop busy for seconds at a time; a DNS answer queued
behind that work reaches the server under test late, and a validator with a
short DNS timeout and no retry (Pebble) fails the challenge for it. On a
thread of its own the responder answers within the interpreter's switch
interval (5 ms) whatever the loop is doing; the answers are those of
:class:`~loadtest.responders.DnsResponder`, whose records the loop publishes.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from loadtest.responders import DNS_RECEIVE_BUFFER, DnsResponder

POLL_SECONDS = 0.2  # how soon stop() is noticed


class ThreadedDnsResponder(DnsResponder):
    """A :class:`DnsResponder` whose socket is served by a thread."""

    def __init__(self, port: int, address: str = "127.0.0.1") -> None:
        super().__init__(port, address)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    async def start(self) -> None:
        """Bind the UDP socket and start answering; raises OSError when the port is taken."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.address, self.port))
        except OSError:
            sock.close()
            raise
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, DNS_RECEIVE_BUFFER)
        sock.settimeout(POLL_SECONDS)
        self._sock = sock
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="dns-responder", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                data, addr = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = self.answer(data)
            if reply is None:
                self.queries["malformed"] += 1
            else:
                with contextlib.suppress(OSError):
                    self._sock.sendto(reply, addr)

    async def stop(self) -> None:
        """Stop the thread and close the socket."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
