"""CLI start-up: wall time of `marketdata --help` and `marketdata <command> --help`, process start included.

Each case runs as its own subprocess (the `marketdata` console script beside this interpreter), the cases
interleaved run by run so that load on the shared machine hits them alike; the median of `--runs` is
printed per case, with `python -c pass` first as the interpreter's own floor. Target (issue 10): every
help under 0.3 s on the 2-core machine.

`--compare DIR` also runs every case against another tree of the project (e.g. `git archive <commit> | tar
-x -C DIR`) on PYTHONPATH, interleaved with this one, and prints both medians side by side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import byte_compile
from marketdata_assets.cli.main import COMMANDS

MARKETDATA = str(Path(sys.executable).with_name("marketdata"))
TARGET_S = 0.3


def cases() -> dict[str, list[str]]:
    out = {"python -c pass": [sys.executable, "-c", "pass"], "marketdata --help": [MARKETDATA, "--help"]}
    for name in COMMANDS:
        out[f"marketdata {name} --help"] = [MARKETDATA, name, "--help"]
    out["marketdata db upgrade --help"] = [MARKETDATA, "db", "upgrade", "--help"]
    return out


def wall_time(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="runs per case (interleaved)")
    parser.add_argument("--compare", metavar="DIR", help="another tree of the project to measure alongside")
    args = parser.parse_args()

    trees: dict[str, dict[str, str] | None] = {"this tree": None}
    if args.compare:
        # on PYTHONPATH the other tree comes before the editable install of this one
        trees = {"other tree": {**os.environ, "PYTHONPATH": str(Path(args.compare).resolve())}, **trees}
    byte_compile()
    if args.compare:
        byte_compile(Path(args.compare).resolve())
    todo = cases()
    times = {(tree, name): [] for name in todo for tree in trees}
    for tree, name in times:  # warm the page cache and the .pyc files; not counted
        wall_time(todo[name], trees[tree])
    load_before = os.getloadavg()
    for _ in range(args.runs):
        for tree, name in times:
            times[tree, name].append(wall_time(todo[name], trees[tree]))
    load_after = os.getloadavg()

    print(f"{args.runs} runs per case, interleaved; load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after ({os.cpu_count()} cores); median (min-max) ms")
    width = max(len(name) for name in todo)
    print(f"{'':<{width}}  " + "".join(f"{tree:>24}" for tree in trees))
    for name in todo:
        cells = []
        for tree in trees:
            samples = times[tree, name]
            cells.append(f"{statistics.median(samples) * 1000:8.1f} ({min(samples) * 1000:.0f}-"
                         f"{max(samples) * 1000:.0f})".rjust(24))
        ours = statistics.median(times["this tree", name])
        flag = "" if name == "python -c pass" or ours < TARGET_S else f"  over {TARGET_S} s"
        print(f"{name:<{width}}  {''.join(cells)}{flag}")


if __name__ == "__main__":
    main()
