"""Export and re-read one symbol-year of 1m klines (525,600 rows) from PostgreSQL.

Fills a scratch database with the simulator's year (generated in process and upserted: this part is not
measured), then prints seconds and rows/s for: export to Parquet (zstd, decimal128), export to CSV, and
reading each dataset back with pandas and with polars. pandas' default turns every decimal128 value into a
Python Decimal object (exact, but slow); `dtype_backend="pyarrow"` keeps them as Arrow decimals.
`--sqlite` measures a SQLite file instead.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd
import polars as pl

from bench.common import scratch_database
from marketdata_assets.binance.intervals import day_start_ms
from marketdata_assets.binance.klines import raw_klines_from_rest
from marketdata_assets.export import export_table
from marketdata_assets.storage.engine import make_engine
from marketdata_assets.storage.migrate import upgrade
from marketdata_assets.storage.repository import MarketDataRepository
from marketdata_sim.market import SimMarket


def fill(engine, symbol: str, year: int) -> int:
    market = SimMarket(now=f"{year + 1}-02-01T00:00:00Z")
    spec = market.spec(symbol)
    repo = MarketDataRepository(engine)
    rows = 0
    for month in range(1, 13):
        lo = day_start_ms(date(year, month, 1))
        hi = day_start_ms(date(year + (month == 12), month % 12 + 1, 1))
        bars = market.klines(symbol, "1m", lo, hi - 1, limit=10**7)
        raw = raw_klines_from_rest(market.kline_rest_rows(spec, "1m", bars), symbol, "1m", source="archive")
        repo.upsert_klines(raw)
        rows += len(raw)
    return rows


def timed(label: str, rows: int, func) -> object:
    t0 = time.perf_counter()
    value = func()
    seconds = time.perf_counter() - t0
    print(f"{label:<28}: {rows:>9} rows in {seconds:6.2f} s = {rows / seconds:>12,.0f} rows/s")
    return value


def measure(url: str, symbol: str, year: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    rows = fill(engine, symbol, year)
    start, end = date(year, 1, 1), date(year, 12, 31)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        result = timed("export parquet (zstd)", rows, lambda: export_table(
            engine, "klines", [symbol], start, end, out / "pq", interval="1m"))
        size = sum(p.stat().st_size for p in result.files)
        print(f"{'':<28}  {len(result.files)} files, {size / 1e6:.1f} MB")
        timed("export csv", rows, lambda: export_table(
            engine, "klines", [symbol], start, end, out / "csv", fmt="csv", interval="1m"))
        frame = timed("re-read parquet, pandas", rows, lambda: pd.read_parquet(out / "pq" / "klines"))
        assert len(frame) == rows
        frame = timed("re-read parquet, pandas+arrow", rows, lambda: pd.read_parquet(
            out / "pq" / "klines", dtype_backend="pyarrow"))
        assert len(frame) == rows
        frame = timed("re-read parquet, polars", rows, lambda: pl.read_parquet(
            f"{out / 'pq' / 'klines'}/**/*.parquet", hive_partitioning=True))
        assert len(frame) == rows
        frame = timed("re-read csv, polars", rows, lambda: pl.read_csv(
            f"{out / 'csv' / 'klines'}/**/*.csv", infer_schema=False))
        assert len(frame) == rows
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--year", type=int, default=2023)
    parser.add_argument("--sqlite", action="store_true", help="measure a SQLite file instead of PostgreSQL")
    args = parser.parse_args()
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            measure(f"sqlite:///{tmp}/bench.db", args.symbol, args.year)
    else:
        with scratch_database("marketdata_bench_export") as url:
            measure(url, args.symbol, args.year)


if __name__ == "__main__":
    main()
