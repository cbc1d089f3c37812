"""CPU time of a process tree from /proc, on a fabricated /proc and on this process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loadtest.cpu import CpuMeter, parse_stat, tree_cpu_ms

TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")


def stat_line(
    pid: int, ppid: int, utime: int, stime: int, cutime: int = 0, cstime: int = 0, comm: str = "srv"
) -> str:
    fields = ["S", str(ppid)] + ["0"] * 9 + [str(utime), str(stime), str(cutime), str(cstime)]
    return f"{pid} ({comm}) " + " ".join(fields + ["20", "0", "1"]) + "\n"


def fake_proc(tmp_path: Path, lines: list[str]) -> Path:
    for line in lines:
        pid = line.split(" ", 1)[0]
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "stat").write_text(line)
    (tmp_path / "self").mkdir()  # non-numeric entries are ignored
    return tmp_path


def test_parse_stat_with_spaces_and_parentheses_in_the_name() -> None:
    stat = parse_stat(stat_line(42, 1, 10, 5, 3, 2, comm="my (odd) server"))
    assert (stat.pid, stat.ppid, stat.utime, stat.stime, stat.cutime, stat.cstime) == (
        42,
        1,
        10,
        5,
        3,
        2,
    )


def test_tree_counts_descendants_and_reaped_children(tmp_path: Path) -> None:
    proc = fake_proc(
        tmp_path,
        [
            stat_line(10, 1, 100, 50, cutime=7, cstime=3),  # the server, with reaped children
            stat_line(11, 10, 20, 10),  # a worker
            stat_line(12, 11, 1, 1),  # the worker's child
            stat_line(99, 1, 1000, 1000),  # unrelated
        ],
    )
    assert tree_cpu_ms(10, proc) == pytest.approx((150 + 10 + 30 + 2) * TICK_MS)


def test_missing_process_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ProcessLookupError):
        tree_cpu_ms(12345, fake_proc(tmp_path, []))


def test_meter_reports_per_certificate(tmp_path: Path) -> None:
    (tmp_path / "10").mkdir()
    stat = tmp_path / "10" / "stat"
    stat.write_text(stat_line(10, 1, 100, 0))
    meter = CpuMeter(10, tmp_path)
    meter.start()
    stat.write_text(stat_line(10, 1, 300, 100))
    meter.stop()
    result = meter.result(issued=4)
    assert result["cpu_ms"] == pytest.approx(300 * TICK_MS, abs=0.1)
    assert result["cpu_ms_per_certificate"] == pytest.approx(75 * TICK_MS, abs=0.01)
    assert meter.result(issued=0)["cpu_ms_per_certificate"] is None


def test_this_process_has_used_some_cpu() -> None:
    assert tree_cpu_ms(os.getpid()) > 0
