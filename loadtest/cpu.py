"""CPU time of a server process tree, read from /proc (Linux), for "CPU ms per certificate".

A process's time is utime+stime of its /proc/PID/stat; workers it forked count
too: live descendants by their own stat, reaped ones through the parent's
cutime+cstime. Sample before and after a run and take the difference.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/PID/stat this module needs (times in clock ticks)."""

    pid: int
    ppid: int
    utime: int
    stime: int
    cutime: int
    cstime: int


def parse_stat(text: str) -> ProcStat:
    """Parse one /proc/PID/stat line; the command name may contain spaces and parentheses."""
    pid = int(text.split(" ", 1)[0])
    # Fields after the last ')' start at field 3 (state); see proc(5).
    rest = text[text.rindex(")") + 2 :].split()
    return ProcStat(pid, int(rest[1]), int(rest[11]), int(rest[12]), int(rest[13]), int(rest[14]))


def read_stat(pid: int, proc: Path = PROC) -> ProcStat | None:
    """The stat of ``pid``, or None when it is gone."""
    try:
        return parse_stat((proc / str(pid) / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def _all_stats(proc: Path) -> list[ProcStat]:
    stats = []
    for entry in proc.iterdir():
        if entry.name.isdigit() and (stat := read_stat(int(entry.name), proc)):
            stats.append(stat)
    return stats


def tree_cpu_ms(pid: int, proc: Path = PROC) -> float:
    """CPU milliseconds used so far by ``pid``, its live descendants and its reaped children."""
    root = read_stat(pid, proc)
    if root is None:
        raise ProcessLookupError(f"no process {pid} in {proc}")
    children: dict[int, list[ProcStat]] = {}
    for stat in _all_stats(proc):
        children.setdefault(stat.ppid, []).append(stat)
    ticks = root.utime + root.stime + root.cutime + root.cstime
    pending = list(children.get(pid, []))
    while pending:
        stat = pending.pop()
        ticks += stat.utime + stat.stime + stat.cutime + stat.cstime
        pending.extend(children.get(stat.pid, []))
    return ticks * 1000.0 / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Before/after CPU sampling of a server process tree."""

    def __init__(self, pid: int, proc: Path = PROC) -> None:
        self.pid = pid
        self.proc = proc
        self.before = 0.0
        self.after = 0.0

    def start(self) -> None:
        """Sample before the run."""
        self.before = tree_cpu_ms(self.pid, self.proc)

    def stop(self) -> None:
        """Sample after the run."""
        self.after = tree_cpu_ms(self.pid, self.proc)

    def result(self, issued: int) -> dict[str, float | int | None]:
        """Server CPU used during the run, in total and per issued certificate."""
        used = self.after - self.before
        return {
            "pid": self.pid,
            "cpu_ms": round(used, 1),
            "certificates": issued,
            "cpu_ms_per_certificate": round(used / issued, 3) if issued else None,
        }
