"""The HTML report: valid SVG charts and the numbers of the run."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from loadtest.report import render
from loadtest.stats import Recorder

SVG = "{http://www.w3.org/2000/svg}"


def sample_result() -> dict[str, object]:
    recorder = Recorder()
    recorder.start()
    for ms in [10.0, 12.0, 15.0, 200.0]:
        recorder.add("newOrder", ms / 10)
        recorder.succeeded(ms)
    recorder.failed("rateLimited")
    recorder.stop()
    return {
        "mode": "acme",
        "target": "https://127.0.0.1/<dir>",
        "plan": {"count": 5},
        **recorder.summary(),
        "server_cpu": {"pid": 1, "cpu_ms": 40.0, "certificates": 4, "cpu_ms_per_certificate": 10.0},
        "client_cpu": {"cpu_ms": 8.0, "unit": "order", "units": 4, "cpu_ms_per_unit": 2.0},
    }


def test_report_has_two_parseable_charts_and_the_figures() -> None:
    page = render(sample_result())
    svgs = [ET.fromstring(s) for s in re.findall(r"<svg.*?</svg>", page, re.S)]
    assert len(svgs) == 2
    histogram, throughput = svgs
    bars = [r for r in histogram.iter(f"{SVG}rect") if float(r.get("height", "0")) > 0]
    assert len(bars) >= 2
    assert len(list(throughput.iter(f"{SVG}rect"))) == 2 * len(sample_result()["timeline"])  # type: ignore[arg-type]
    assert "10.0 ms per certificate" in page and "2.0 ms per order" in page
    assert "rateLimited" in page
    assert "&lt;dir&gt;" in page and "<dir>" not in page


def test_report_without_samples_says_no_data() -> None:
    recorder = Recorder()
    recorder.start()
    recorder.stop()
    page = render({"mode": "est", "target": "x", **recorder.summary()})
    assert "no data" in page
