"""Rows a and b: 30 days of BTCUSDT 1m over REST, with the peers' client-side throttles and without them.

Each case is a fresh process (start-up included); the seconds it spends writing its result for the check
(`dump_s`, reported by the process itself) are taken off its wall time. The simulator's counters are reset
before every run, so each run's kline requests and weight are its own.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.common import scratch_database, sim_env
from bench.peers import checks, sim
from bench.peers.envs import WRAPPERS, Project, peer_python, wrapper
from bench.peers.measure import base_env, timed
from bench.peers.report import Row
from bench.peers.truth import KlineTruth

SYMBOL = "BTCUSDT"
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
END_MS = START_MS + 30 * 86_400_000  # 2024-01-31 00:00 UTC, exclusive
FIRST_DAY, LAST_DAY = "2024-01-01", "2024-01-30"
NOW = "2024-02-01T00:00:00Z"  # the simulator's frozen clock: every bar of the range is closed
PROJECT_REST = WRAPPERS / "project_rest.py"


def _fetch(command: list[str], env: dict[str, str], url: str, cwd: Path,
           check: Callable[[], checks.Check]) -> tuple[float, dict, checks.Check]:
    sim.reset(url)
    run = timed(command, env, cwd=cwd)
    used = sim.request_summary(url)
    dump_s = run.report.get("dump_s", 0.0)
    extra = {"wall_s": round(run.wall_s, 3), "dump_s": round(dump_s, 3), "kline_requests": used["kline_requests"],
             "weight": used["weight"], "http_429": used["http_429"]}
    return run.wall_s - dump_s, extra, check()


def _peer_check(peer: str, out: Path, truth: KlineTruth) -> Callable[[], checks.Check]:
    if peer == "python-binance":
        return lambda: checks.exact_lines(truth, checks.rest_array_lines(out))

    def float_check() -> checks.Check:
        open_ms, columns = checks.ccxt_ohlcv(out)
        return checks.float_ohlcv(truth, open_ms, columns, "quote volume, trade count and taker volumes")

    return float_check


def run_rest(url: str, truth: KlineTruth, project: Project, rounds: int, throttled: bool) -> Row:
    rest_py = peer_python("python-binance")
    span = ["--sim", url, "--symbol", SYMBOL, "--start-ms", str(START_MS), "--end-ms", str(END_MS)]
    flag = [] if throttled else ["--no-throttle"]
    env = base_env()
    if throttled:
        row = Row("rest", "REST, BTCUSDT 1m, 30 days, as users get it (peers with their client-side throttles)",
                  "s", ["python-binance", "ccxt"], ["project client", "project CLI --source rest -> PostgreSQL"])
    else:
        row = Row("rest-nothrottle", "REST, BTCUSDT 1m, 30 days, peers' throttles removed", "s",
                  ["python-binance, sleep removed", "ccxt, enableRateLimit=False"], ["project client"])
    names = dict(zip(["python-binance", "ccxt"], row.peers, strict=True))
    with tempfile.TemporaryDirectory(prefix="peers-rest-") as folder:
        work = Path(folder)
        for i in range(rounds):
            for peer, name in names.items():
                out = work / f"{peer}-{i}.json"
                value, extra, check = _fetch([rest_py, wrapper("rest_peers.py"), peer, *span, *flag,
                                              "--out", str(out)], env, url, work, _peer_check(peer, out, truth))
                row.add(name, value, extra, check)
            out = work / f"project-{i}.csv"
            value, extra, check = _fetch(project.script(PROJECT_REST, *span, "--out", str(out)),
                                         env | project.env() | {"MARKETDATA_STATE_DIR": str(work / "state")},
                                         url, work, lambda out=out: checks.exact_lines(truth, checks.csv_lines(out)))
            row.add("project client", value, extra, check)
            if throttled:
                _project_cli(row, url, truth, project, work, i)
    row.notes.append("python-binance: Client(ping=False) (its constructor pings the spot API, which the simulator "
                     "does not serve); one extra request (weight 1) finds the first valid timestamp")
    return row


def _project_cli(row: Row, url: str, truth: KlineTruth, project: Project, work: Path, i: int) -> None:
    with scratch_database(f"md_peers_rest_{i}") as database_url:
        env = base_env() | project.env() | sim_env(url) | {"DATABASE_URL": database_url,
                                                           "MARKETDATA_STATE_DIR": str(work / "state")}
        sim.reset(url)
        run = timed(project.cli("download", "--symbols", SYMBOL, "--intervals", "1m", "--start", FIRST_DAY,
                                "--end", LAST_DAY, "--source", "rest", "--no-progress"), env, cwd=work)
        used = sim.request_summary(url)
        check = checks.exact_lines(truth, checks.pg_lines(database_url, SYMBOL, START_MS, END_MS))
    row.add("project CLI --source rest -> PostgreSQL", run.wall_s,
            {"kline_requests": used["kline_requests"], "weight": used["weight"], "http_429": used["http_429"]},
            check)
