"""The live progress line and the text summary."""

from __future__ import annotations

import asyncio
import io

from loadtest.output import format_summary, progress_line, show_progress
from loadtest.stats import Recorder


class Terminal(io.StringIO):
    """A stream that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


def finished_recorder() -> Recorder:
    recorder = Recorder()
    recorder.start()
    recorder.add("newOrder", 5.0)
    recorder.succeeded(100.0)
    recorder.failed("badNonce")
    recorder.stop()
    return recorder


def test_progress_line_shows_target_only_when_bounded() -> None:
    recorder = finished_recorder()
    assert "ok 1/10  err 1" in progress_line(recorder, 10)
    assert "ok 1  err 1" in progress_line(recorder, 0)


async def test_progress_is_drawn_on_a_terminal_and_cleared_at_the_end() -> None:
    stream = Terminal()
    task = asyncio.create_task(show_progress(finished_recorder(), 10, stream, interval=0.01))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    text = stream.getvalue()
    assert "\rok" not in text and "ok 1/10" in text
    assert text.endswith("\r\x1b[K")


async def test_no_progress_when_not_a_terminal() -> None:
    stream = io.StringIO()
    await show_progress(finished_recorder(), 10, stream, interval=0.01)
    assert stream.getvalue() == ""


def test_summary_lists_steps_in_flow_order_and_errors() -> None:
    result = {"mode": "acme", "target": "t", **finished_recorder().summary(), "server_cpu": None}
    text = format_summary(result)
    assert text.index("newOrder") < text.index("total")
    assert "badNonce" in text and "1 ok, 1 failed of 0 started" in text


def test_summary_puts_client_cpu_per_order_under_server_cpu_and_the_preparation_apart() -> None:
    result = {
        "mode": "acme",
        "target": "t",
        **finished_recorder().summary(),
        "server_cpu": {"pid": 7, "cpu_ms": 45.0, "cpu_ms_per_certificate": 4.5},
        "client_cpu": {"cpu_ms": 16.0, "unit": "order", "units": 10, "cpu_ms_per_unit": 1.6},
        "prepare": {
            "seconds": 0.3,
            "client_cpu_ms": 120.0,
            "accounts": 16,
            "csrs": 10,
            "csr_cpu_ms": 2.0,
            "connections": 8,
            "latency_ms": {"newAccount": {"p50": 19.5}},
        },
    }
    lines = format_summary(result).splitlines()
    server = next(i for i, line in enumerate(lines) if "server CPU" in line)
    assert "4.500 ms per certificate" in lines[server]
    assert lines[server + 1] == "  client CPU (load generator): 16 ms, 1.600 ms per order"
    assert "16 accounts" in lines[-1] and "10 keys + CSRs" in lines[-1] and "0.30 s" in lines[-1]
