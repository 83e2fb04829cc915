"""A re-run of an unchanged symbol-year as a user types it: `marketdata download --symbols BTCUSDT
--intervals 1m --start 2023-01-01 --end 2023-12-31`, end to end as a subprocess (process start, imports,
exchangeInfo, 365 checksum requests, the ledger), after one first load into a scratch store. Printed beside
`python -c pass` (the interpreter's floor) and `marketdata download --help` (the CLI's own start-up),
interleaved, medians of `--runs`, with the machine's load.

  .venv/bin/python -m bench.bench_cli_rerun [--runs 5] [--store postgres|sqlite]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import byte_compile, scratch_database, sim_env, sim_process

MARKETDATA = str(Path(sys.executable).with_name("marketdata"))
YEAR = ["--symbols", "BTCUSDT", "--intervals", "1m", "--start", "2023-01-01", "--end", "2023-12-31",
        "--no-progress"]


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed ({done.returncode}): {done.stderr[-1500:]}")
    return elapsed, done.stdout


def run(runs: int, database_url: str, sim_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"} | sim_env(sim_url) | {
        "DATABASE_URL": database_url}
    first, _ = timed([MARKETDATA, "download", *YEAR], env)
    print(f"first load (not measured further): {first:.2f} s")
    cases = {"python -c pass": [sys.executable, "-c", "pass"],
             "marketdata download --help": [MARKETDATA, "download", "--help"],
             "re-run of the unchanged year": [MARKETDATA, "download", *YEAR]}
    times: dict[str, list[float]] = {name: [] for name in cases}
    last = ""
    for _ in range(runs):
        for name, command in cases.items():
            elapsed, out = timed(command, env)
            times[name].append(elapsed)
            last = out if name.startswith("re-run") else last
    print(f"load average {os.getloadavg()[0]:.1f}; medians of {runs} interleaved runs")
    for name, values in times.items():
        print(f"  {name:<32} {statistics.median(values):7.2f} s   ({', '.join(f'{v:.2f}' for v in values)})")
    print("the re-run's closing line: " + last.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    args = parser.parse_args()
    byte_compile()
    with sim_process("2024-04-02T12:00:00Z") as sim_url:
        if args.store == "postgres":
            with scratch_database("md_bench_cli_rerun") as url:
                run(args.runs, url, sim_url)
        else:
            with tempfile.TemporaryDirectory() as folder:
                run(args.runs, f"sqlite:///{folder}/md.db", sim_url)


if __name__ == "__main__":
    main()
