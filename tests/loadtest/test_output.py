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
