"""Burst benchmark of the validation authority: ``python -m loadtest.validation_burst``.

Three processes on loopback:

- responders: a DNS server (every A query → 127.0.0.1) and an HTTP-01 responder
  that answers each request after ``--delay`` seconds;
- gateway (this process): the :class:`ValidationAuthority` plus a stand-in
  directory handler on the same event loop, as the real gateway would host both;
- prober: GETs the directory every ``--probe-interval`` ms during the burst.

The burst starts ``--validations`` http-01 validations at once. The run passes
when all are valid within ``--max-wall`` seconds and the directory's p99 latency
stays under ``--max-p99-ms``. Exit status 0 on pass, 1 on fail.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import multiprocessing.connection
import socket
import statistics
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from multiprocessing.synchronize import Event as EventType
from typing import Any

import uvloop
from aiohttp import ClientSession, ClientTimeout, web

from gateway.validation import ChallengeTask
from gateway.validation.engine import STARTS_PER_LOOP_TURN, ValidationAuthority
from gateway.validation.settings import ValidationSettings

THUMBPRINT = "bench-thumbprint"


@dataclass
class Report:
    """What one burst measured."""

    validations: int
    valid: int
    responder_delay_s: float
    wall_s: float
    gateway_cpu_s: float
    directory_requests: int
    directory_p50_ms: float
    directory_p99_ms: float
    directory_max_ms: float
    passed: bool
    loop_lag_p99_ms: float = 0.0
    loop_lag_max_ms: float = 0.0
    gc_pause_max_ms: float = 0.0


# --- responders process -------------------------------------------------------------


# The responders stand in for the applicants' servers. They are written lean (raw
# protocols, hand-built DNS answers) so that the CPU they burn on the shared
# cores does not count against the validator being measured.

A_RECORD = bytes.fromhex("c00c00010001") + struct.pack("!IH", 60, 4) + bytes([127, 0, 0, 1])


class _DnsProtocol(asyncio.DatagramProtocol):
    """Answers A queries with 127.0.0.1 and everything else with an empty NOERROR."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        end = 12
        while data[end]:
            end += data[end] + 1
        question = data[12 : end + 5]
        qid, flags = struct.unpack("!HH", data[:4])
        is_a = question[-4:-2] == b"\x00\x01"
        header = struct.pack("!6H", qid, 0x8480 | (flags & 0x0100), 1, int(is_a), 0, 0)
        answer = header + question + (A_RECORD if is_a else b"")
        self.transport.sendto(answer, addr)  # type: ignore[attr-defined]


class _SlowHttp(asyncio.Protocol):
    """Answers GET /.well-known/acme-challenge/<token> with "<token>.<thumbprint>" after a delay."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" in self.buffer:
            path = self.buffer.split(b" ", 2)[1]
            body = path.rsplit(b"/", 1)[-1] + b"." + THUMBPRINT.encode()
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            reply = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
            asyncio.get_running_loop().call_later(self.delay, self._reply, reply)

    def _reply(self, reply: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(reply)  # type: ignore[attr-defined]
            self.transport.close()


async def _responders(delay: float, conn: multiprocessing.connection.Connection) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # A burst of thousands of queries overflows the default receive buffer; a real
    # recursive resolver would not drop them, so neither may the stand-in.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    transport, _ = await loop.create_datagram_endpoint(_DnsProtocol, sock=sock)
    server = await loop.create_server(lambda: _SlowHttp(delay), "127.0.0.1", 0, backlog=4096)
    http_port = server.sockets[0].getsockname()[1]
    conn.send((transport.get_extra_info("sockname")[1], http_port))
    await loop.run_in_executor(None, conn.recv)  # until the gateway says stop
    server.close()
    transport.close()


def _run_responders(delay: float, conn: multiprocessing.connection.Connection) -> None:
    uvloop.run(_responders(delay, conn))


# --- prober process ------------------------------------------------------------------


async def _probe(url: str, interval: float, go: EventType, stop: EventType) -> list[float]:
    latencies: list[float] = []
    async with ClientSession(timeout=ClientTimeout(total=5)) as session:
        async with session.get(url) as response:  # warm the connection before measuring
            await response.read()
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        while not stop.is_set():
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(interval)
    return latencies


def _run_prober(
    url: str,
    interval: float,
    go: EventType,
    stop: EventType,
    conn: multiprocessing.connection.Connection,
) -> None:
    conn.send(uvloop.run(_probe(url, interval, go, stop)))


# --- gateway process -----------------------------------------------------------------


async def _directory(request: web.Request) -> web.Response:
    return web.json_response({"newNonce": "n", "newAccount": "a", "newOrder": "o"})


async def _burst(args: argparse.Namespace, dns_port: int, http_port: int) -> Report:
    app = web.Application()
    app.router.add_get("/directory", _directory)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/directory"

    ctx = multiprocessing.get_context("spawn")
    go, stop = ctx.Event(), ctx.Event()
    receive, send = ctx.Pipe(duplex=False)
    prober = ctx.Process(target=_run_prober, args=(url, args.probe_interval / 1000, go, stop, send))
    prober.start()

    settings = ValidationSettings(
        resolvers=(("127.0.0.1", dns_port),),
        http01_port=http_port,
        allow_loopback=True,
        attempts=1,
        attempt_timeout_seconds=args.delay + 5,
    )
    va = ValidationAuthority(settings, starts_per_turn=args.starts_per_turn)
    await va.start()
    tasks = [
        ChallengeTask("dns", f"v{i}.bench.test", "http-01", f"t{i}", f"t{i}.{THUMBPRINT}")
        for i in range(args.validations)
    ]
    await va.validate(tasks[0])  # warm-up: first connection, first lookup
    if args.gc_freeze:
        gc.freeze()  # what a long-running server does once started: see docs/bench-validation.md
    await asyncio.sleep(0.3)  # let the prober connect and wait at the start line
    gc_pauses: list[float] = []
    gc.callbacks.append(_gc_timer(gc_pauses))
    lags: list[float] = []
    monitor = asyncio.create_task(_loop_lag(lags))
    go.set()
    started, cpu_started = time.perf_counter(), time.process_time()
    outcomes = await asyncio.gather(*(va.validate(t) for t in tasks))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    stop.set()
    monitor.cancel()
    gc.callbacks.clear()
    latencies: list[float] = await asyncio.get_running_loop().run_in_executor(None, receive.recv)
    prober.join()
    await va.aclose()
    await runner.cleanup()
    report = _report(args, sum(o.valid for o in outcomes), wall, cpu, latencies)
    report.loop_lag_p99_ms = _percentile(lags, 0.99)
    report.loop_lag_max_ms = round(max(lags, default=0.0), 2)
    report.gc_pause_max_ms = round(max(gc_pauses, default=0.0), 2)
    return report


async def _loop_lag(lags: list[float]) -> None:
    """How late a 2 ms timer fires: the stall any request on this loop would see."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(0.002)
        lags.append((time.perf_counter() - started - 0.002) * 1000)


def _gc_timer(pauses: list[float]) -> Callable[[str, dict[str, int]], None]:
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((time.perf_counter() - started[0]) * 1000)

    return callback


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values) or [0.0]
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * fraction))], 2)


def _report(
    args: argparse.Namespace, valid: int, wall: float, cpu: float, latencies: list[float]
) -> Report:
    ordered = sorted(latencies) or [0.0]
    p99 = _percentile(latencies, 0.99)
    passed = valid == args.validations and wall < args.max_wall and p99 < args.max_p99_ms
    return Report(
        validations=args.validations,
        valid=valid,
        responder_delay_s=args.delay,
        wall_s=round(wall, 3),
        gateway_cpu_s=round(cpu, 3),
        directory_requests=len(latencies),
        directory_p50_ms=round(statistics.median(ordered), 2),
        directory_p99_ms=round(p99, 2),
        directory_max_ms=round(ordered[-1], 2),
        passed=passed,
    )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--validations", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=1.0, help="responder delay, seconds")
    parser.add_argument(
        "--probe-interval", type=float, default=5.0, help="ms between directory GETs"
    )
    parser.add_argument("--max-wall", type=float, default=3.0, help="pass bound, seconds")
    parser.add_argument("--max-p99-ms", type=float, default=50.0, help="pass bound, milliseconds")
    parser.add_argument(
        "--starts-per-turn", type=int, default=STARTS_PER_LOOP_TURN, help="validator pacing"
    )
    parser.add_argument(
        "--gc-freeze", action="store_true", help="gc.freeze() after start-up, before the burst"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one burst and print its report; 0 when it met both bounds."""
    args = _parse(argv)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    responders = ctx.Process(target=_run_responders, args=(args.delay, child))
    responders.start()
    try:
        dns_port, http_port = parent.recv()
        report = uvloop.run(_burst(args, dns_port, http_port))
    finally:
        parent.send("stop")
        responders.join(timeout=10)
        if responders.is_alive():
            responders.terminate()
    _print(report, args.json)
    return 0 if report.passed else 1


def _print(report: Report, as_json: bool) -> None:
    fields: dict[str, Any] = asdict(report)
    if as_json:
        print(json.dumps(fields))
        return
    for key, value in fields.items():
        print(f"{key:>20}: {value}")


if __name__ == "__main__":
    sys.exit(main())
