"""This project against freqtrade, cryptofeed, python-binance and ccxt on the local Binance, interleaved.

    bash bench/peers/setup.sh                        # once: the peers' virtualenvs under .peers/
    .venv/bin/python -m bench.peers.run [--rounds 3] [--only rest rest-nothrottle archive rerun fault stream]
                                        [--fault corrupt|missing] [--project-commit REV] [--json FILE]

Rows (issue 12's table): `rest` 30 days of BTCUSDT 1m over REST with the peers' client-side throttles,
`rest-nothrottle` the same without them, `archive` the 2023 year from the archive (first load), `rerun` the
same command again, `fault` the year with one damaged archive day, `stream` WebSocket aggTrades (msg/s and
CPU per message). In every round each case runs once, one after the other (A, B, C, A, B, C ...), each a
fresh process with its start-up included, and its output is checked against the simulator's truth.
Medians of the rounds, the project's ratio to each peer (> 1: ahead), and the load average are printed.
Not part of CI: about 14-17 minutes for the default 3 rounds on the 2-core machine.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench.common import byte_compile, sim_process
from bench.peers import report, row_archive, row_rest, row_stream, sim
from bench.peers.envs import REPO, Project, peer_python
from bench.peers.measure import load_average
from bench.peers.truth import kline_truth

ROWS = ("rest", "rest-nothrottle", "archive", "rerun", "fault", "stream")
FROZEN_NOW = "2024-02-01T00:00:00Z"  # every day of 2023 and of the 30 REST days is settled and published


def describe_tree(tree: Path) -> str:
    """The commit of the project tree and whether it has uncommitted changes (another engineer may be editing)."""
    try:
        head = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        marker = tree / ".peers-commit"
        return f"commit {marker.read_text()[:10]} (exported)" if marker.exists() else f"{tree} (not a git checkout)"
    changed = f", {len(dirty.splitlines())} file(s) changed, uncommitted" if dirty else ", clean"
    return f"{tree} at {head}{changed}"


@contextmanager
def exported(commit: str) -> Iterator[Path]:
    """`git archive` of one commit into a scratch folder (the checkout and its .git are only read)."""
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", f"{commit}^{{commit}}"],
                         capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix=f"peers-{sha[:7]}-") as folder:
        archive = subprocess.Popen(["git", "-C", str(REPO), "archive", sha], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", folder], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise SystemExit(f"git archive {sha} failed")
        (Path(folder) / ".peers-commit").write_text(sha)
        yield Path(folder)


def run_frozen(args: argparse.Namespace, project: Project, wanted: set[str]) -> list[report.Row]:
    """Every row but the stream one: one simulator with its clock frozen at FROZEN_NOW."""
    rows: list[report.Row] = []
    with sim_process(FROZEN_NOW) as url:
        if wanted & {"rest", "rest-nothrottle"}:
            truth = kline_truth(row_rest.SYMBOL, row_rest.START_MS, row_rest.END_MS, FROZEN_NOW)
            for key, throttled in (("rest", True), ("rest-nothrottle", False)):
                if key in wanted:
                    rows.append(_done(row_rest.run_rest(url, truth, project, args.rounds, throttled)))
        if wanted & {"archive", "rerun", "fault"}:
            print(f"building the simulator's 2023 zips: {sim.prewarm(url, 'BTCUSDT', '2023-01-01', '2023-12-31')}",
                  flush=True)
            truth = kline_truth(row_archive.SYMBOL, row_archive.START_MS, row_archive.END_MS, FROZEN_NOW)
            if wanted & {"archive", "rerun"}:
                for row in row_archive.run_archive(url, truth, project, args.rounds, "rerun" in wanted):
                    if row.key in wanted or row.key == "archive":
                        rows.append(_done(row))
            if "fault" in wanted:
                rows.append(_done(row_archive.run_fault(url, truth, project, args.rounds, args.fault)))
    return rows


def _done(row: report.Row) -> report.Row:
    row.load_end = load_average()
    report.print_row(row)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each case, interleaved (default 3)")
    parser.add_argument("--only", nargs="+", choices=ROWS, default=list(ROWS), metavar="ROW",
                        help=f"rows to run: {', '.join(ROWS)} (`rerun` also runs the first loads it re-runs)")
    parser.add_argument("--fault", choices=("corrupt", "missing", "truncated"), default="corrupt",
                        help="what is wrong with the one archive day of the fault row (default corrupt)")
    parser.add_argument("--offered", type=float, default=200_000, help="stream row: aggTrades/s offered")
    parser.add_argument("--ws-symbols", type=int, default=8, help="stream row: at most this many symbols")
    parser.add_argument("--warmup", type=float, default=3.0, help="stream row: seconds before the window")
    parser.add_argument("--seconds", type=float, default=8.0, help="stream row: the measured window")
    parser.add_argument("--project-tree", type=Path, default=REPO,
                        help="source tree of the project under test (default this checkout)")
    parser.add_argument("--project-commit", metavar="REV",
                        help="measure this commit instead, exported with `git archive` (e.g. HEAD, while the "
                             "checkout has uncommitted edits)")
    parser.add_argument("--json", type=Path, help="also write every run's raw figures here")
    args = parser.parse_args()
    for peer in ("freqtrade", "cryptofeed", "python-binance"):
        peer_python(peer)  # fails early, naming setup.sh, when a virtualenv is missing
    if args.project_commit:
        with exported(args.project_commit) as tree:
            measure(args, Project(tree))
    else:
        measure(args, Project(args.project_tree.resolve()))


def measure(args: argparse.Namespace, project: Project) -> None:
    wanted = set(args.only)
    byte_compile(project.tree)
    started, load0 = time.monotonic(), load_average()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {load0:.2f}; project: "
          f"{describe_tree(project.tree)}; rounds {args.rounds}", flush=True)
    rows = run_frozen(args, project, wanted)
    if "stream" in wanted:
        with sim_process(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")) as url:
            for row in row_stream.run_stream(url, project, args.rounds, args.offered, args.ws_symbols,
                                             args.warmup, args.seconds):
                rows.append(_done(row))
    load1 = load_average()
    print(f"\nload average {load0:.2f} at the start, {load1:.2f} at the end; {time.monotonic() - started:.0f} s\n")
    print(report.markdown_table(rows))
    if args.json:
        report.save(rows, args.json, {"project": describe_tree(project.tree), "load_start": load0,
                                      "load_end": load1, "rounds": args.rounds})


if __name__ == "__main__":
    main()
