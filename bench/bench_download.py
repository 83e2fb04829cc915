"""One symbol-year of 1m klines from the local archive into PostgreSQL: validated, idempotent.

Prints rows/s for the first load, the time of a re-run of unchanged days (same archive checksums: skipped),
and rows/s of a forced re-load of the same rows (every file fetched, validated and upserted; no row changes).
Targets (issue 2): >= 65,000 rows/s (a year in <= 8 s) and a re-run in <= 2 s.
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import httpx

from bench.common import scratch_database, sim_env, sim_process
from marketdata_assets.binance.intervals import days_between
from marketdata_assets.ingest.runtime import open_runtime
from marketdata_assets.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--year", type=int, default=2023)
    args = parser.parse_args()
    days = days_between(date(args.year, 1, 1), date(args.year, 12, 31))
    with sim_process(f"{args.year + 1}-02-01T00:00:00Z") as url, scratch_database("marketdata_bench") as db:
        settings = Settings.from_env(sim_env(url) | {"DATABASE_URL": db})
        # warm the simulator's file cache so that the figure is ours, not the simulator's zip generation
        with httpx.Client() as http:
            for day in days:
                http.get(f"{url}/data/futures/um/daily/klines/{args.symbol}/1m/{args.symbol}-1m-{day}.zip")
        with open_runtime(settings) as runtime:
            loader = runtime.kline_loader("1m")
            loader.symbols()
            t0 = time.perf_counter()
            results = loader.load(args.symbol, days)
            first = time.perf_counter() - t0
            rows = sum(r.stored_rows for r in results)
            t0 = time.perf_counter()
            again = loader.load(args.symbol, days)
            rerun = time.perf_counter() - t0
            t0 = time.perf_counter()
            loader.written.clear()
            forced = loader.load(args.symbol, days, force=True)
            forced_s = time.perf_counter() - t0
            changed = loader.written["inserted"] + loader.written["updated"]
    unchanged = sum(r.status == "unchanged" for r in again)
    print(f"first load     : {rows} rows in {first:.2f} s = {rows / first:,.0f} rows/s (target >= 65,000)")
    print(f"re-run         : {unchanged}/{len(again)} days unchanged in {rerun:.2f} s (target <= 2 s)")
    print(f"forced re-load : {sum(r.stored_rows for r in forced)} rows in {forced_s:.2f} s = "
          f"{sum(r.stored_rows for r in forced) / forced_s:,.0f} rows/s, {changed} rows changed")


if __name__ == "__main__":
    main()
