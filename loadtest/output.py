"""What a person sees: a live progress line on a terminal and the end-of-run summary."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from loadtest.stats import Recorder

STEP_ORDER = (
    "newAccount",
    "newOrder",
    "authz",
    "challenge",
    "validation",
    "finalize",
    "issuance",
    "certificate",
    "simpleenroll",
    "schedule_lag",
    "total",
)


def progress_line(recorder: Recorder, target: int) -> str:
    """One status line: done/target (0: no fixed target), failures, throughput, in flight."""
    elapsed = recorder.elapsed()
    rate = recorder.ok / elapsed if elapsed > 0 else 0.0
    failed = sum(recorder.errors.values())
    done = f"{recorder.ok}/{target}" if target else str(recorder.ok)
    return (
        f"{elapsed:7.1f}s  ok {done}  err {failed}  {rate:8.1f}/s  in flight {recorder.in_flight}"
    )


async def show_progress(
    recorder: Recorder, target: int, stream: TextIO | None = None, interval: float = 0.5
) -> None:
    """Redraw the progress line every ``interval`` seconds until cancelled (terminals only)."""
    stream = stream or sys.stdout
    if not stream.isatty():
        return
    try:
        while True:
            await asyncio.sleep(interval)
            stream.write("\r" + progress_line(recorder, target) + "\x1b[K")
            stream.flush()
    finally:
        stream.write("\r\x1b[K")
        stream.flush()


def ordered_steps(latency: dict[str, Any]) -> list[str]:
    """Step names in flow order, unknown ones after, alphabetically."""
    known = [s for s in STEP_ORDER if s in latency]
    return known + sorted(s for s in latency if s not in STEP_ORDER)


def format_summary(result: dict[str, Any]) -> str:
    """The human-readable end-of-run report."""
    lines = [
        f"{result['mode']} against {result['target']}",
        f"  {result['succeeded']} ok, {result['failed']} failed of {result['started']} started "
        f"in {result['elapsed_s']:.2f} s → {result['throughput_per_s']:.2f}/s",
        "",
        f"  {'step':<14}{'count':>7}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}",
    ]
    latency = result["latency_ms"]
    for step in ordered_steps(latency):
        s = latency[step]
        figures = "".join(f"{s[k]:>10.1f}" for k in ("p50", "p95", "p99", "max"))
        lines.append(f"  {step:<14}{s['count']:>7}{figures}")
    if result["errors"]:
        samples = result.get("error_samples", {})
        lines += ["", "  errors:"] + [
            f"    {n:>6}  {kind}" + (f"  ({samples[kind]})" if kind in samples else "")
            for kind, n in result["errors"].items()
        ]
    if result.get("counters"):
        lines += ["", "  " + ", ".join(f"{k}={v}" for k, v in result["counters"].items())]
    lines += cpu_lines(result)
    prepared = result.get("prepare")
    if prepared:
        lines += ["", "  " + prepare_line(prepared)]
    return "\n".join(lines)


def _per(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def cpu_lines(result: dict[str, Any]) -> list[str]:
    """Server CPU per certificate and the load generator's CPU per unit, one above the other."""
    lines = []
    server = result.get("server_cpu")
    if server:
        lines.append(
            f"  server CPU (pid {server['pid']}): {server['cpu_ms']:.0f} ms, "
            f"{_per(server['cpu_ms_per_certificate'])} ms per certificate"
        )
    client = result.get("client_cpu")
    if client:
        lines.append(
            f"  client CPU (load generator): {client['cpu_ms']:.0f} ms, "
            f"{_per(client['cpu_ms_per_unit'])} ms per {client['unit']}"
        )
    return [""] + lines if lines else []


def prepare_line(prepared: dict[str, Any]) -> str:
    """What was made before the measured window, and what it cost."""
    parts = []
    if "accounts" in prepared:
        p50 = prepared["latency_ms"].get("newAccount", {}).get("p50", 0.0)
        parts.append(f"{prepared['accounts']} accounts (newAccount p50 {p50:.1f} ms)")
    parts.append(f"{prepared['csrs']} keys + CSRs ({prepared['csr_cpu_ms']:.0f} ms)")
    if "connections" in prepared:
        parts.append(f"{prepared['connections']} connections")
    return (
        f"prepared before the window in {prepared['seconds']:.2f} s "
        f"(client CPU {prepared['client_cpu_ms']:.0f} ms): " + ", ".join(parts)
    )


def write_json(result: dict[str, Any], path: Path) -> None:
    """Write the machine-readable result."""
    path.write_text(json.dumps(result, indent=2) + "\n")
