"""The HTTP connection protocol: aiohttp's request handler with a watchdog on every phase.

aiohttp bounds the idle time between requests (``keepalive_timeout``) but not
the time a client takes to send a request: a connection that sends half a
request line, headers that never end or a body that stalls is held, with its
handler, for as long as the client likes. The watchdog here, in the manner of
Go's ``ReadHeaderTimeout``/``ReadTimeout`` and nginx's
``client_header_timeout``/``client_body_timeout``, bounds each phase:

- request line and headers: ``header_timeout`` from the connection (or from the
  first byte after a response) until the headers are complete; not extended by
  further bytes, so a header sent one byte at a time does not keep it open;
- body: ``body_timeout`` between two pieces of a request body; on expiry a
  handler waiting for the body gets a ``requestTimeout`` refusal (its front end
  answers 408) and the connection closes after that answer;
- idle keep-alive: aiohttp's own ``keepalive_timeout``, counted here.

It also admits each connection against the :class:`ConnectionBudget`, ends a
body whose chunked framing turns out malformed (aiohttp queues a 400 but leaves
the handler waiting for the rest), and answers requests aiohttp cannot parse
with one log line instead of a traceback.

This leans on aiohttp internals (``_messages``, ``_request_count``,
``_current_request``, ``_process_keepalive``); tests/test_protocol.py pins
each behaviour against a real socket, so an upgrade that moves them fails there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web
from aiohttp.http import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from gateway import connections as conn
from gateway.errors import ErrorKind, GatewayError

log = logging.getLogger("gateway.connections")

# What a connection over budget reads before the close: enough for a person
# with curl to see why, cheap enough to send to a flood.
REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 45\r\n\r\n"
           b"too many connections; retry in a few seconds\n")
_HEADERS, _BODY = "headers", "body"
HANDSHAKE_GRACE_SECONDS = 0.5


@dataclass(frozen=True)
class Timeouts:
    """Seconds each phase of a request may take (see the module docstring)."""

    header: float
    body: float
    idle: float


class GuardedRequestHandler(RequestHandler):
    """One connection: budget on arrival, a deadline per phase, counted closures."""

    def __init__(self, manager: web.Server, *, budget: conn.ConnectionBudget,
                 timeouts: Timeouts, **kwargs: Any) -> None:
        super().__init__(manager, keepalive_timeout=timeouts.idle, **kwargs)
        self._budget = budget
        self._timeouts = timeouts
        self._address: str | None = None  # set once admitted
        self._made = False
        self._handshake_watch: asyncio.TimerHandle | None = None
        self._phase: str | None = None
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._body: StreamReader | None = None

    def watch_handshake(self, seconds: float) -> None:
        """Count the connection as a failed TLS handshake if it is not made in ``seconds``.

        The event loop runs the handshake and aborts it at its timeout without
        telling the application protocol; only the missing connection_made shows it.
        """
        self._handshake_watch = self._loop.call_later(seconds, self._handshake_over)

    def _handshake_over(self) -> None:
        self._handshake_watch = None
        if not self._made:
            self._budget.closed(conn.TLS_HANDSHAKE)

    # -- connection -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit the connection within the budget (or refuse it) and start the header clock."""
        self._made = True
        if self._handshake_watch is not None:
            self._handshake_watch.cancel()
            self._handshake_watch = None
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) else str(peer or "")
        if self._budget.admit(address) is not None:
            cast(asyncio.Transport, transport).write(REFUSED)
            transport.close()
            return
        self._address = address
        super().connection_made(transport)
        self._arm(_HEADERS, self._timeouts.header)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Give the connection's place back."""
        if self._address is None:
            return
        self._budget.release(self._address)
        self._address = None
        self._phase = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed aiohttp's parser, moving the phase clock as requests and bodies arrive."""
        if self._address is None or self._close or self._force_close:
            return  # refused, or closing: aiohttp reads nothing more either
        phase = self._phase
        if phase is _BODY:
            self._deadline = self._loop.time() + self._timeouts.body
        before = self._request_count
        super().data_received(data)
        parsed = self._request_count - before
        if parsed:
            self._after_messages(parsed)
        elif phase is None:
            if data:  # the first bytes of the next request, its headers not yet whole
                # Armed after parsing, not before: a request that arrives whole (the
                # usual case) never starts a header clock it would stop at once.
                self._arm(_HEADERS, self._timeouts.header)
        elif self._body is not None and self._body.is_eof():
            self._body = None
            self._phase = None

    def resume_reading(self, resume_parser: bool = True) -> None:
        """Resume what flow control paused; nothing when nothing is paused.

        aiohttp's body reader asks for a resume after every read that leaves its
        buffer under the low-water mark and at every body's end, paused or not,
        and each resume re-feeds the parser an empty chunk: twice per request
        with a body. The parser holds unparsed bytes only while paused (its
        pause comes with ``_reading_paused``; a full message queue sets
        ``_buffer_paused``), so with neither flag set there is nothing to resume.
        """
        if self._reading_paused or self._buffer_paused:
            super().resume_reading(resume_parser)

    def _after_messages(self, count: int) -> None:
        """New requests were parsed: a malformed one ends the body in flight; the last decides."""
        broken = self._body
        if broken is not None and not broken.is_eof() and any(
                not isinstance(message, RawRequestMessage)
                for message, _ in list(self._messages)[-count:]):
            self._end_body(broken, GatewayError(
                ErrorKind.MALFORMED, "the request body's chunked framing is malformed"))
        message, payload = self._messages[-1]  # nothing takes from the queue while we parse
        if isinstance(message, RawRequestMessage) and not payload.is_eof():
            self._body = payload
            self._arm(_BODY, self._timeouts.body)
        else:
            self._body = None
            self._phase = None

    # -- deadlines --------------------------------------------------------------

    def _arm(self, phase: str, seconds: float) -> None:
        self._phase = phase
        self._deadline = self._loop.time() + seconds
        if self._timer is not None and self._timer_at <= self._deadline:
            return  # the pending timer fires first and re-schedules itself
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = self._deadline
        self._timer = self._loop.call_at(self._deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._phase is None or self.transport is None:
            return
        if self._phase == _BODY and self._reading_paused:
            # The handler has not read what arrived: the gateway, not the client, is slow.
            self._deadline = self._loop.time() + self._timeouts.body
        if self._loop.time() < self._deadline:
            self._timer_at = self._deadline
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            return
        self._expire(self._phase)

    def _expire(self, phase: str) -> None:
        self._phase = None
        if phase == _HEADERS:
            self._budget.closed(conn.HEADER_TIMEOUT, self._address or "")
            self.force_close()
            return
        self._budget.closed(conn.BODY_TIMEOUT, self._address or "")
        body, self._body = self._body, None
        if body is None:
            self.force_close()
            return
        self._end_body(body, GatewayError(
            ErrorKind.REQUEST_TIMEOUT,
            f"no part of the request body arrived for {self._timeouts.body:g} s"))

    def _end_body(self, body: StreamReader, refusal: GatewayError) -> None:
        """End a body that will not arrive whole; the connection closes after the answer.

        A handler waiting for it gets ``refusal`` and answers it (408, 400). Once
        the handler has answered, aiohttp drains the rest of the body
        ("lingering"), which only a timeout ends quietly.
        """
        if self._current_request is None:
            body.set_exception(TimeoutError(refusal.detail))
        else:
            body.set_exception(refusal)
            # Nothing more of this body is wanted: no draining after the answer either.
            self._lingering_time = 0.0
        self.close()  # no keep-alive; a queued 400 for the rest of the bytes is not sent

    def _process_keepalive(self) -> None:
        closing = self._force_close
        super()._process_keepalive()
        if self._force_close and not closing:
            self._budget.closed(conn.HEADER_TIMEOUT if self._phase == _HEADERS
                                else conn.IDLE_TIMEOUT, self._address or "")

    # -- requests aiohttp refuses itself ----------------------------------------

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> StreamResponse:
        """A request aiohttp could not parse: a one-line 4xx and one log line, no traceback."""
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already sent; cannot send the error too")
        reason = " ".join((message or str(exc) or "").split("\n")[0].split())
        self._budget.closed(conn.BAD_REQUEST, self._address or "")
        log.debug("refused a request from %s that is not valid HTTP: %s", self._address, reason)
        resp = web.Response(status=status, text=f"{HTTPStatus(status).phrase}: {reason}\n")
        resp.force_close()
        return resp


def handler_factory(server: web.Server, budget: conn.ConnectionBudget, timeouts: Timeouts,
                    handshake_timeout: float | None, **options: Any
                    ) -> Callable[[], GuardedRequestHandler]:
    """The protocol factory a listener calls once per accepted connection.

    ``handshake_timeout`` is the TLS listener's (None for plain HTTP);
    ``options`` are aiohttp's handler options (access logger, line sizes ...).
    """
    loop = asyncio.get_running_loop()

    def make() -> GuardedRequestHandler:
        handler = GuardedRequestHandler(server, loop=loop, budget=budget, timeouts=timeouts,
                                        **options)
        if handshake_timeout is not None:
            # A little later than the loop's own abort, so that it has happened.
            handler.watch_handshake(handshake_timeout + HANDSHAKE_GRACE_SECONDS)
        return handler

    return make
