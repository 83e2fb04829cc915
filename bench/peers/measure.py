"""Timing and CPU plumbing shared by the rows: subprocess wall times, /proc CPU, medians and the machine's load.

Why subprocesses everywhere: a user's wall clock includes interpreter start, imports and shutdown, so each
tool is timed as a process from spawn to exit. CPU is read from /proc/<pid>/stat (utime + stime of every
thread of the process), the same way for a peer, the sidecar and PostgreSQL's backends.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One timed subprocess: wall seconds from spawn to exit, its output, and its JSON report if any."""

    wall_s: float
    returncode: int
    stdout: str
    stderr: str
    report: dict = field(default_factory=dict)


class RunFailed(RuntimeError):
    """A measured process exited non-zero; the message carries the tail of its stderr."""


def timed(command: Sequence[str], env: dict[str, str], cwd: Path | str | None = None,
          timeout: float = 900, check: bool = True) -> Run:
    """Run `command` to completion and time it; the last stdout line that is a JSON object is its report."""
    started = time.perf_counter()
    done = subprocess.run(list(command), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - started
    if check and done.returncode != 0:
        raise RunFailed(f"{' '.join(command[:4])} ... exited {done.returncode}: {done.stderr[-2500:]}")
    report: dict = {}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            try:
                report = json.loads(line)
            except ValueError:
                continue
            break
    return Run(wall, done.returncode, done.stdout, done.stderr, report)


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (all its threads); 0.0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # fields[0] is the state (field 3 of stat); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def load_average() -> float:
    """The 1-minute load average (the machine is shared: every figure is printed with it)."""
    return os.getloadavg()[0]


def base_env() -> dict[str, str]:
    """The environment the tools run in: ours, without a Dagster home (no recording into a real instance)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONUNBUFFERED"] = "1"
    return env
