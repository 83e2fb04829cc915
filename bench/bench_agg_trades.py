"""Aggregate trades: one BTCUSDT-sized day (about 1.5 million rows) from the local archive into PostgreSQL.

    python bench/bench_agg_trades.py [--url postgresql://postgres@127.0.0.1:5432/test] [--trades-per-minute 4200]

The simulator's default BTCUSDT has 600 trades a minute (216,000 aggregate trades a day); real BTCUSDT days
hold about 1.5 million aggregate trades, so the simulator is started with a BTCUSDT spec of 4200 trades a
minute at 4 per aggregate: 1,512,000 real, consecutive aggregate trades in the day's archive file (the
symbol spec is a SimMarket option; nothing else changes). The zip is built once before the clock starts
(the simulator's own CSV generation is not the loader's cost). Then `AggTradeLoader.load` runs into a
fresh schema: archive download + sha256, parse and checks, REST bounds of the day, COPY + INSERT, ledger.
Target (issue 5): <= 15 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import time
from datetime import date

from sqlalchemy.schema import CreateSchema, DropSchema

from marketdata_assets.binance.archive import ArchiveClient, archive_path
from marketdata_assets.binance.rest import BinanceRestClient
from marketdata_assets.ingest.agg_trades import AggTradeLoader
from marketdata_assets.storage import make_engine
from marketdata_assets.storage.migrate import upgrade
from marketdata_sim import SimServer
from marketdata_sim.symbols import default_symbols

DAY = date(2024, 3, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--trades-per-minute", type=int, default=4200)
    args = parser.parse_args()

    specs = default_symbols()
    specs["BTCUSDT"] = dataclasses.replace(specs["BTCUSDT"], trades_per_minute=args.trades_per_minute)
    admin = make_engine(args.url)
    schema = f"bench_{secrets.token_hex(4)}"
    with admin.begin() as conn:
        conn.execute(CreateSchema(schema))
    try:
        with SimServer(now="2024-04-02T12:00:00Z", symbols=specs) as sim:
            rest = BinanceRestClient(sim.url)
            archive = ArchiveClient(sim.url)
            t0 = time.perf_counter()
            warm = archive.fetch(archive_path("aggTrades", "BTCUSDT", DAY))
            assert warm is not None
            print(f"simulator built the day's file: {len(warm.csv_bytes) / 1e6:.1f} MB CSV "
                  f"in {time.perf_counter() - t0:.1f} s (not counted)")
            engine = make_engine(args.url, schema=schema)
            upgrade(engine)
            loader = AggTradeLoader(engine, rest, archive)
            loader.symbol_info("BTCUSDT")  # exchangeInfo once, as a run does before its days
            t0 = time.perf_counter()
            [result] = loader.load("BTCUSDT", [DAY])
            elapsed = time.perf_counter() - t0
            print(f"loaded {result.stored_rows:,} aggregate trades ({result.status}, sources {result.sources}, "
                  f"{len(result.gaps)} id gap(s)) in {elapsed:.2f} s = {result.stored_rows / elapsed:,.0f} rows/s "
                  f"(target <= 15 s: {'met' if elapsed <= 15 else 'MISSED'})")
            t0 = time.perf_counter()
            loader.load("BTCUSDT", [DAY])
            print(f"re-load of the same day (upsert path, nothing changes): {time.perf_counter() - t0:.2f} s")
            engine.dispose()
            rest.close()
            archive.close()
    finally:
        with admin.begin() as conn:
            conn.execute(DropSchema(schema, cascade=True))
        admin.dispose()


if __name__ == "__main__":
    main()
