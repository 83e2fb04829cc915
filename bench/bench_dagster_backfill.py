"""Wall time of a real Dagster backfill of kline assets against the local Binance, daemon included.

Starts the simulator, `dagster dev` (webserver + daemon) on a fresh DAGSTER_HOME with the repository's
dagster.yaml (or deploy/dagster.postgres.yaml with --instance postgres), launches `marketdata backfill`
through the GraphQL API, waits for it, then verifies from the Dagster instance that every partition was
materialized and every gaps check passed. Prints the figures (data ready = the last run ended; end to end
= `marketdata backfill --wait` returned, i.e. the daemon marked the backfill complete) and where the time
went; exits 1 when anything is missing. The stock daemon loop is 30 s, fixed: `--backfill-interval S` runs
dagster-webserver + deploy/daemon.py instead of `dagster dev`. The market data goes to a scratch PostgreSQL
database (dropped afterwards; `--market-data sqlite` for a SQLite file, `--database-url` for your own), and
the simulator's archive zips are built before the clock starts (`--cold-archive` not to); the output says
which store was used. Figures: bench/README.md, "Dagster backfill".

    .venv/bin/python bench/bench_dagster_backfill.py                       # one symbol-year of klines_1m
    .venv/bin/python bench/bench_dagster_backfill.py --instance postgres --backfill-interval 5
    .venv/bin/python bench/bench_dagster_backfill.py --symbols BTCUSDT ETHUSDT --intervals 1m 1h \\
        --start 2024-01-01 --end 2024-01-31 --instance postgres --database-url postgresql://...
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("MARKETDATA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


# Medians on the 2-core shared box (bench/README.md, "Dagster backfill"), BTCUSDT 2023 klines_1m, end to end
REFERENCE = ("reference (bench/README.md): before (1710055) SQLite + dagster dev 89.6 s end to end (85.3 s data "
             "ready); PostgreSQL instance + deploy/daemon.py 5 s loop, market data in SQLite 39.3 s (36.2 s); "
             "after (8067303), market data in PostgreSQL: 24.9 s (21.3 s) at load 2.6-4.1, 35.2 s (29.8 s) at "
             "load 3.8-4.5; target <= 30 s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_database(prefix: str) -> tuple[str, str, callable]:
    """A fresh PostgreSQL database; returns (name, psycopg2-style host parts, drop function)."""
    import sqlalchemy as sa

    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))  # name is generated above, not user input

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return name, PG_ADMIN.rsplit("/", 1)[0], drop


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not up after {timeout_s} s")


def phases(instance, launched_at: float) -> tuple[dict[str, float], float | None]:
    """Where the time went, from the backfill's runs: waiting for the daemon to submit the first run,
    the run queue and process start, each step, and the epoch time the last run ended."""
    records = [r for r in instance.get_run_records() if r.dagster_run.tags.get("dagster/backfill")]
    if not records:
        return {}, None
    first = min(records, key=lambda r: r.create_timestamp.timestamp())
    out = {"submit (daemon pick-up)": first.create_timestamp.timestamp() - launched_at}
    if first.start_time:
        out["queue + run process start"] = first.start_time - first.create_timestamp.timestamp()
        # the run start, split by the first run's own events (backfill runs skip the queue: ENQUEUED, then
        # STARTING when the daemon hands it to the code server, START once the run process is up)
        marks = {}
        for event in instance.all_logs(first.dagster_run.run_id):
            kind = event.dagster_event.event_type.name if event.dagster_event else None
            if kind in ("RUN_STARTING", "RUN_START", "STEP_START") and kind not in marks:
                marks[kind] = event.timestamp
        created = first.create_timestamp.timestamp()
        if {"RUN_STARTING", "RUN_START", "STEP_START"} <= marks.keys():
            out["  created -> launched"] = marks["RUN_STARTING"] - created
            out["  launched -> process up"] = marks["RUN_START"] - marks["RUN_STARTING"]
            out["  process up -> first step"] = marks["STEP_START"] - marks["RUN_START"]
    for record in records:
        for stat in instance.get_run_step_stats(record.dagster_run.run_id):
            if stat.start_time and stat.end_time:
                out[f"step {stat.step_key}"] = out.get(f"step {stat.step_key}", 0.0) + stat.end_time - stat.start_time
    ends = [r.end_time for r in records if r.end_time]
    return out, (max(ends) if ends else None)


def wait_location(url: str, timeout_s: float) -> None:
    """Until the webserver has loaded every code location (dagster-webserver alone answers before that)."""
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            body = httpx.post(url + "/graphql", json={"query": query}, timeout=5).json()
            entries = body["data"]["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                return
        except (httpx.HTTPError, KeyError, TypeError, ValueError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"code location not loaded after {timeout_s} s")


def verify(env: dict[str, str], intervals: list[str], partitions: list[str],
           launched_at: float) -> tuple[list[str], float | None, dict[str, float]]:
    """Problems found in the instance (unmaterialized partitions, gaps checks not passed), the epoch time
    at which the last run ended (the data was ready then; the backfill daemon notices later) and phases."""
    os.environ.update(env)  # DAGSTER_HOME and the instance's DAGSTER_PG_* variables
    import dagster as dg
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    problems = []
    with dg.DagsterInstance.get() as instance:
        breakdown, last_end = phases(instance, launched_at)
        for interval in intervals:
            key = dg.AssetKey(f"klines_{interval}")
            done = instance.get_materialized_partitions(key)
            missing = sorted(set(partitions) - set(done))
            if missing:
                problems.append(f"klines_{interval}: {len(missing)} partition(s) not materialized, e.g. {missing[:3]}")
            infos = instance.event_log_storage.get_asset_check_partition_info([dg.AssetCheckKey(key, "gaps")])
            passed = {i.partition_key for i in infos
                      if i.latest_execution_status == AssetCheckExecutionRecordStatus.SUCCEEDED}
            not_passed = sorted(set(partitions) - passed)
            if not_passed:
                problems.append(f"klines_{interval}: gaps check not passed for {len(not_passed)}, "
                                f"e.g. {not_passed[:3]}")
    return problems, last_end, breakdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", nargs="+", default=["BTCUSDT"])
    parser.add_argument("--intervals", nargs="+", default=["1m"])
    parser.add_argument("--start", default="2023-01-01")
    parser.add_argument("--end", default="2023-12-31")
    parser.add_argument("--instance", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--market-data", choices=["postgres", "sqlite"], default="postgres",
                        help="market-data store: a scratch PostgreSQL database (default, as in production) "
                             "or a fresh SQLite file in DAGSTER_HOME")
    parser.add_argument("--database-url", help="market-data store URL (overrides --market-data)")
    parser.add_argument("--cold-archive", action="store_true",
                        help="do not pre-build the simulator's archive zips (by default they are fetched once "
                             "before the backfill, as bench_download does: the real archive serves static files)")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--keep", action="store_true", help="keep DAGSTER_HOME and logs")
    parser.add_argument("--backfill-interval", type=int, metavar="S",
                        help="run dagster-webserver + deploy/daemon.py with this backfill loop interval "
                             "instead of `dagster dev` (stock daemon: 30 s, fixed)")
    args = parser.parse_args(argv)

    from marketdata_sim import SimServer

    home = tempfile.mkdtemp(prefix="md_dagster_home_")
    cleanups = []
    sim = SimServer(now="2024-04-02T12:00:00Z").start()
    cleanups.append(sim.stop)
    env = {**os.environ, **sim.env(), "DAGSTER_HOME": home,
           "MARKETDATA_SYMBOLS": ",".join(args.symbols), "MARKETDATA_INTERVALS": ",".join(args.intervals),
           "MARKETDATA_START_DATE": args.start,
           # a range run's per-partition materializations in one event-log write (PostgreSQL; SQLite
           # stores a batch event by event, so it changes nothing there)
           "DAGSTER_EVENT_BATCH_SIZE": "1000"}
    if args.instance == "postgres":
        name, _, drop = pg_database("dagster")
        cleanups.append(drop)
        shutil.copy(ROOT / "deploy" / "dagster.postgres.yaml", Path(home) / "dagster.yaml")
        env.update(DAGSTER_PG_HOST="127.0.0.1", DAGSTER_PG_USER="postgres", DAGSTER_PG_PASSWORD="",
                   DAGSTER_PG_DB=name)
    else:
        shutil.copy(ROOT / "dagster.yaml", Path(home) / "dagster.yaml")
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
        store = "given by --database-url"
    elif args.market_data == "postgres":
        if str(ROOT) not in sys.path:  # run as a script (tests do): `bench` is a package of the repository root
            sys.path.insert(0, str(ROOT))
        from bench.common import scratch_database

        market = scratch_database(f"md_bench_backfill_{secrets.token_hex(4)}")
        env["DATABASE_URL"] = market.__enter__()
        cleanups.append(lambda: market.__exit__(None, None, None))
        store = "PostgreSQL (scratch database)"
    else:
        env["DATABASE_URL"] = f"sqlite:///{home}/marketdata.db"
        store = "SQLite"
    print(f"market data: {store}; Dagster instance: {args.instance}")
    from marketdata_assets.binance.intervals import days_between, parse_day

    days = days_between(parse_day(args.start), parse_day(args.end))
    if not args.cold_archive:
        # the simulator builds each zip on first request (CPU in this process, ~20 ms a day); Binance serves
        # static files, so build them before the clock starts, as bench_download does
        t_warm = time.perf_counter()
        archive = env["BINANCE_ARCHIVE_URL"].rstrip("/")
        with httpx.Client(timeout=60) as http:
            for symbol in args.symbols:
                for interval in args.intervals:
                    for day in days:
                        http.get(f"{archive}/data/futures/um/daily/klines/{symbol}/{interval}/"
                                 f"{symbol}-{interval}-{day}.zip")
        print(f"simulator archive warmed in {time.perf_counter() - t_warm:.1f} s (--cold-archive to skip)")
    port = free_port()
    log = open(Path(home) / "dagster_dev.log", "w")  # noqa: SIM115 - closed in finally
    workspace = str(ROOT / "workspace.yaml")
    if args.backfill_interval:
        env["MARKETDATA_BACKFILL_INTERVAL_SECONDS"] = str(args.backfill_interval)
        commands = [[str(BIN / "dagster-webserver"), "-w", workspace, "-p", str(port), "-h", "127.0.0.1"],
                    [sys.executable, str(ROOT / "deploy" / "daemon.py"), "run", "-w", workspace]]
    else:
        commands = [[str(BIN / "dagster"), "dev", "-w", workspace, "-p", str(port), "-h", "127.0.0.1"]]
    if args.backfill_interval:
        # two processes creating a fresh SQLite instance at once can stamp its schema twice: create it first
        subprocess.run([str(BIN / "dagster"), "instance", "migrate"], cwd=ROOT, env=env, stdout=log,
                       stderr=subprocess.STDOUT, check=True)
    procs = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True) for command in commands]
    proc = procs[0]
    daemon = f"backfill daemon every {args.backfill_interval} s" if args.backfill_interval else "dagster dev"
    url = f"http://127.0.0.1:{port}"
    status = 1
    try:
        t0 = time.perf_counter()
        wait_http(url + "/server_info", 120, proc)
        wait_location(url, 120)
        t_up = time.perf_counter()
        launched_at = time.time()
        backfill = subprocess.run(
            [str(BIN / "marketdata"), "backfill", "--symbols", *args.symbols, "--intervals", *args.intervals,
             "--start", args.start, "--end", args.end, "--dagster-url", url, "--wait",
             "--timeout", str(args.timeout)],
            env=env, capture_output=True, text=True,
        )
        t_done = time.perf_counter()
        print(backfill.stdout.strip())
        if backfill.returncode != 0:
            print(backfill.stderr.strip()[-3000:], file=sys.stderr)
        partitions = [f"{d.isoformat()}|{s}" for s in args.symbols for d in days]
        problems, last_end, breakdown = verify(env, args.intervals, partitions, launched_at)
        for problem in problems:
            print("PROBLEM:", problem)
        for phase, seconds in breakdown.items():
            print(f"  {phase:<28} {seconds:6.1f} s")
        ready = f"{last_end - launched_at:.1f} s" if last_end else "n/a"
        print(f"{daemon} up in {t_up - t0:.1f} s; backfill of {len(partitions)} partition(s) x "
              f"{len(args.intervals)} asset(s) ({', '.join(args.symbols)}; {', '.join(args.intervals)}; "
              f"{args.start}..{args.end}; {args.instance} instance, market data in {store}): "
              f"data ready (last run ended) after {ready}, "
              f"backfill COMPLETED after {t_done - t_up:.1f} s end to end")
        print(REFERENCE)
        status = 0 if backfill.returncode == 0 and not problems else 1
    finally:
        for p in procs:
            os.killpg(p.pid, 15)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
        log.close()
        for cleanup in reversed(cleanups):
            cleanup()
        if args.keep or status:
            print(f"DAGSTER_HOME kept at {home} (dagster_dev.log)")
        else:
            shutil.rmtree(home, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
