"""Rows c, d and e: BTCUSDT 1m for 2023 from the archive, as each tool's command line does it.

c: first load into an empty store, process start included; d: the same command again on that store; e: a
first load with one day's archive file damaged (`--fault corrupt`, the default: zip bytes altered while the
.CHECKSUM keeps the good hash) or absent (`--fault missing`: 404), timed to the end of the year.
Cases: freqtrade `download-data` (futures candles, 1m, feather), `marketdata download` into PostgreSQL and
into SQLite. The simulator's zips are built before the first run, so no tool pays for their generation.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg

from bench.common import scratch_database, sim_env
from bench.peers import checks, sim
from bench.peers.envs import Project, peer_python, wrapper
from bench.peers.measure import base_env, timed
from bench.peers.report import Row
from bench.peers.truth import KlineTruth

SYMBOL = "BTCUSDT"
START_MS = 1_672_531_200_000  # 2023-01-01 00:00 UTC
END_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC, exclusive
FAULT_DAY = "2023-07-01"
FREQTRADE = "freqtrade download-data (feather)"
PG = "marketdata download -> PostgreSQL"
SQLITE = "marketdata download -> SQLite"
REFERENCE = "reference: PostgreSQL's own COPY of the year into a table with the same unique key (in-process)"
PROJECT_ARGS = ("download", "--symbols", SYMBOL, "--intervals", "1m", "--start", "2023-01-01", "--end", "2023-12-31",
                "--no-progress")
FREQTRADE_ARGS = ("--timeframes", "1m", "--timerange", "20230101-20240101", "--trading-mode", "futures",
                  "--candle-types", "futures")


@dataclass
class Target:
    """One tool with an empty store: the command that fills it, its environment and folder, and its check."""

    command: list[str]
    env: dict[str, str]
    cwd: Path
    check: Callable[[], checks.Check]


def _feather_check(path: Path, truth: KlineTruth) -> Callable[[], checks.Check]:
    def check() -> checks.Check:
        if not path.exists():
            return checks.Check(False, 0, f"{path.name} was not written")
        open_ms, columns = checks.feather_ohlcv(path)
        return checks.float_ohlcv(truth, open_ms, columns, "close time, quote volume, trade count, taker volumes")

    return check


@contextmanager
def target(case: str, url: str, truth: KlineTruth, project: Project, name: str) -> Iterator[Target]:
    with tempfile.TemporaryDirectory(prefix=f"peers-{name}-") as folder:
        work = Path(folder)
        if case == FREQTRADE:
            command = [peer_python("freqtrade"), wrapper("freqtrade_download.py"), "--sim", url, "--workdir",
                       str(work), "--", *FREQTRADE_ARGS]
            feather = work / "data" / "futures" / "BTC_USDT_USDT-1m-futures.feather"
            yield Target(command, base_env(), work, _feather_check(feather, truth))
            return
        env = base_env() | project.env() | sim_env(url) | {"MARKETDATA_STATE_DIR": str(work / "state")}
        if case == SQLITE:
            db = work / "marketdata.db"
            yield Target(project.cli(*PROJECT_ARGS), env | {"DATABASE_URL": f"sqlite:///{db}"}, work,
                         lambda: checks.exact_lines(truth, checks.sqlite_lines(db, SYMBOL, START_MS, END_MS)))
            return
        with scratch_database(name) as database_url:
            yield Target(project.cli(*PROJECT_ARGS), env | {"DATABASE_URL": database_url}, work,
                         lambda: checks.exact_lines(truth, checks.pg_lines(database_url, SYMBOL, START_MS, END_MS)))


def _closing_line(output: str) -> str:
    """The project's one-line summary (`365 day(s) stored; ...`), or freqtrade's own last word on the pair."""
    lines = output.splitlines()
    warned = [line for line in lines if re.search(r"exception raised|falling back|stopped at|failed:", line)]
    said = [line for line in lines if re.search(r"day\(s\) stored|Downloaded data", line)]
    return " | ".join(re.sub(r"^.* - (INFO|WARNING) - ", "", line).strip()[:240] for line in warned[:1] + said[-1:])


def _measure(row: Row, case: str, t: Target, url: str, fault: dict | None = None) -> None:
    sim.reset(url)
    if fault:
        sim.set_faults(url, **fault)
    run = timed(t.command, t.env, cwd=t.cwd)
    used = sim.request_summary(url)
    extra = {"archive_requests": used["archive_requests"], "rest_requests": used["rest_requests"],
             "kline_requests": used["kline_requests"], "weight": used["weight"], "http_429": used["http_429"],
             "said": _closing_line(run.stdout + run.stderr)}
    row.add(case, run.wall_s, extra, t.check())


def copy_text(truth: KlineTruth) -> bytes:
    """The year as COPY text in the stored layout: symbol, interval, timestamps, exact decimals."""
    def stamps(ms: np.ndarray) -> np.ndarray:
        return np.strings.add(np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms"), "+00")

    fields = [line.split(b",") for line in truth.lines]
    opens, closes = stamps(truth.bars["open_time"]), stamps(truth.bars["open_time"] + 59_999)
    return b"".join(b"\t".join([truth.spec.symbol.encode(), b"1m", o.encode(), *f[1:6], c.encode(), *f[7:11]]) + b"\n"
                    for o, c, f in zip(opens.tolist(), closes.tolist(), fields, strict=True))


def copy_reference(text: bytes, name: str) -> float:
    """Seconds PostgreSQL takes to COPY the year into an empty table keyed (symbol, interval, open_time)."""
    with scratch_database(name) as url, psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("CREATE TABLE k (symbol text NOT NULL, interval text NOT NULL, open_time timestamptz NOT NULL, "
                     "open numeric, high numeric, low numeric, close numeric, volume numeric, close_time timestamptz, "
                     "quote_volume numeric, trades_count bigint, taker_buy_volume numeric, "
                     "taker_buy_quote_volume numeric, UNIQUE (symbol, interval, open_time))")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy("COPY k FROM STDIN") as copy:
            copy.write(text)
        conn.commit()
        return time.perf_counter() - started


def run_archive(url: str, truth: KlineTruth, project: Project, rounds: int, rerun: bool) -> list[Row]:
    first = Row("archive", "archive, BTCUSDT 1m 2023, first load, process start included", "s",
                [FREQTRADE], [PG, SQLITE])
    again = Row("rerun", "re-run of the same year (each tool a second time on its own data)", "s",
                [FREQTRADE], [PG, SQLITE])
    text = copy_text(truth)
    for i in range(rounds):
        for case in (FREQTRADE, PG, SQLITE):
            with target(case, url, truth, project, f"md_peers_archive_{i}") as t:
                _measure(first, case, t, url)
                if rerun:
                    _measure(again, case, t, url)
        first.add(REFERENCE, copy_reference(text, f"md_peers_copy_{i}"))
    return [first, again] if rerun else [first]


def run_fault(url: str, truth: KlineTruth, project: Project, rounds: int, kind: str) -> Row:
    key = sim.archive_key(SYMBOL, FAULT_DAY)
    row = Row("fault", f"one {kind} archive day ({FAULT_DAY}), first load of the year", "s", [FREQTRADE], [PG, SQLITE])
    for i in range(rounds):
        for case in (FREQTRADE, PG, SQLITE):
            with target(case, url, truth, project, f"md_peers_fault_{i}") as t:
                _measure(row, case, t, url, {kind: [key]})
    sim.reset(url)
    return row
