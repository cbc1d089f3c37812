"""A self-contained HTML report: summary table, latency histogram and throughput over time.

Charts are inline SVG drawn here, so the report opens anywhere without
JavaScript or a plotting library.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.output import ordered_steps

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
OK_COLOUR, ERROR_COLOUR = "#3a7bd5", "#d64545"


@dataclass(frozen=True)
class Series:
    """Bars of one colour; stacked on top of earlier series in the same chart."""

    name: str
    values: list[float]
    colour: str


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value``."""
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1)
    return float(((int(value) // step) + 1) * step)


def bar_chart(
    title: str, labels: list[str], series: list[Series], x_title: str, y_title: str
) -> str:
    """A stacked bar chart as an SVG element."""
    if not labels:
        return f"<p>{html.escape(title)}: no data</p>"
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    y_max = _nice_max(max(totals))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{html.escape(title)}">',
        *_y_grid(y_max),
        *_bars(labels, series, y_max),
        *_x_labels(labels),
        f'<text x="{LEFT + PLOT_W / 2}" y="{HEIGHT - 6}" text-anchor="middle">'
        f"{html.escape(x_title)}</text>",
        f'<text x="12" y="{TOP + PLOT_H / 2}" transform="rotate(-90 12 {TOP + PLOT_H / 2})" '
        f'text-anchor="middle">{html.escape(y_title)}</text></svg>',
    ]
    return "\n".join(parts)


def _y_grid(y_max: float) -> list[str]:
    parts = []
    for tick in range(5):
        y = TOP + PLOT_H - PLOT_H * tick / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{y_max * tick / 4:g}</text>'
        )
    return parts


def _bars(labels: list[str], series: list[Series], y_max: float) -> list[str]:
    bar_w = PLOT_W / len(labels)
    parts = []
    for i, label in enumerate(labels):
        base = 0.0
        for s in series:
            height = PLOT_H * s.values[i] / y_max
            y = TOP + PLOT_H - PLOT_H * base / y_max - height
            parts.append(
                f'<rect x="{LEFT + i * bar_w + 1:.1f}" y="{y:.1f}" width="{max(bar_w - 2, 1):.1f}" '
                f'height="{height:.1f}" fill="{s.colour}"><title>{html.escape(label)}: '
                f"{s.values[i]:g} {html.escape(s.name)}</title></rect>"
            )
            base += s.values[i]
    return parts


def _x_labels(labels: list[str]) -> list[str]:
    bar_w = PLOT_W / len(labels)
    every = max(1, len(labels) // 8)  # about eight labels, whatever the number of bars
    return [
        f'<text x="{LEFT + (i + 0.5) * bar_w:.1f}" y="{HEIGHT - BOTTOM + 16}" '
        f'text-anchor="middle">{html.escape(labels[i])}</text>'
        for i in range(0, len(labels), every)
    ]


def _latency_table(latency: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(step)}</td>"
        + "".join(
            f"<td>{latency[step][k]:g}</td>" for k in ("count", "p50", "p95", "p99", "max", "mean")
        )
        + "</tr>"
        for step in ordered_steps(latency)
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("step", "count", "p50 ms", "p95 ms", "p99 ms", "max ms", "mean ms")
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _errors_table(errors: dict[str, int], samples: dict[str, str]) -> str:
    if not errors:
        return "<p>No errors.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v}</td>"
        f'<td style="text-align:left">{html.escape(samples.get(k, ""))}</td></tr>'
        for k, v in errors.items()
    )
    return f"<table><tr><th>error</th><th>count</th><th>example</th></tr>{rows}</table>"


def render(result: dict[str, Any]) -> str:
    """The report page for one run result (as produced by ``--json``)."""
    edges, counts = result["histogram_ms"]["edges"], result["histogram_ms"]["counts"]
    latency_chart = bar_chart(
        "Order latency",
        [f"{e:g}" for e in edges],
        [Series("units", [float(c) for c in counts], OK_COLOUR)],
        "total latency, ms (last bar: ≥ p99)",
        "units",
    )
    timeline = result["timeline"]
    throughput_chart = bar_chart(
        "Throughput",
        [f"{p['t']:g}" for p in timeline],
        [
            Series("ok", [float(p["ok"]) for p in timeline], OK_COLOUR),
            Series("errors", [float(p["errors"]) for p in timeline], ERROR_COLOUR),
        ],
        "seconds since start",
        "completed per second",
    )
    cpu = result.get("server_cpu") or {}
    cpu_line = (
        f"<p>Server CPU: {cpu['cpu_ms']} ms, {cpu['cpu_ms_per_certificate']} ms per certificate "
        f"(pid {cpu['pid']}).</p>"
        if cpu
        else ""
    )
    client = result.get("client_cpu") or {}
    if client:
        cpu_line += (
            f"<p>Client CPU (load generator): {client['cpu_ms']} ms, "
            f"{client['cpu_ms_per_unit']} ms per {html.escape(client['unit'])}.</p>"
        )
    title = f"{result['mode']} load against {result['target']}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font:14px sans-serif;margin:2em;max-width:60em}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}
svg text{{font:11px sans-serif}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<p>{result["succeeded"]} succeeded, {result["failed"]} failed of {result["started"]} started in
{result["elapsed_s"]} s: <b>{result["throughput_per_s"]} per second</b>.</p>
{cpu_line}
<h2>Latency per step</h2>{_latency_table(result["latency_ms"])}
<h2>Latency histogram (total)</h2>{latency_chart}
<h2>Throughput over time</h2>{throughput_chart}
<h2>Errors</h2>{_errors_table(result["errors"], result.get("error_samples", {}))}
<h2>Plan</h2><pre>{html.escape(json.dumps(result.get("plan", {}), indent=2))}</pre>
</body></html>
"""


def write_report(result: dict[str, Any], path: Path) -> None:
    """Write the HTML report for ``result`` to ``path``."""
    path.write_text(render(result))
