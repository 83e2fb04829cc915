"""Replay throughput: one day of the simulator's BTCUSDT aggregate trades and 1m klines, as fast as possible.

Fills a scratch PostgreSQL database (not measured: generated in process, COPYed), then replays the day
into an EventBus with one subscriber per topic and prints events/s. Target (issue 5): >= 100,000 events/s.
`--sqlite` measures a SQLite file instead.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, date, datetime

import numpy as np
import sqlalchemy as sa

from bench.common import scratch_database
from marketdata_assets.binance.intervals import DAY_MS, day_start_ms
from marketdata_assets.binance.klines import raw_klines_from_rest
from marketdata_assets.storage.engine import make_engine
from marketdata_assets.storage.migrate import upgrade
from marketdata_assets.storage.repository import MarketDataRepository
from marketdata_assets.storage.tables_stream import agg_trades
from marketdata_sim import generate as gen
from marketdata_sim.derived import _agg_rows
from marketdata_sim.market import SimMarket
from streaming.events import EventBus
from streaming.replay import replay


def fill(engine, symbol: str, day: date) -> int:
    market = SimMarket(now="2024-04-02T12:00:00Z")
    spec = market.spec(symbol)
    lo = day_start_ms(day)
    bars = market.klines(symbol, "1m", lo, lo + DAY_MS - 1, limit=10**6)
    MarketDataRepository(engine).upsert_klines(
        raw_klines_from_rest(market.kline_rest_rows(spec, "1m", bars), symbol, "1m", source="archive"))
    day_bars = market.day_bars(spec, lo // DAY_MS)
    trades = _agg_rows(spec, gen.day_agg_trades(spec, market.seed, day_bars, np.arange(len(day_bars["open_time"]))))
    now = datetime.now(UTC)
    rows = [{"symbol": symbol, "agg_id": t["a"], "price": t["p"], "quantity": t["q"], "first_trade_id": t["f"],
             "last_trade_id": t["l"], "trade_time": t["T"], "is_buyer_maker": t["m"], "event_time": None,
             "source": "rest", "ingested_at": now} for t in trades]
    with engine.begin() as conn:
        for i in range(0, len(rows), 50_000):
            conn.execute(sa.insert(agg_trades), rows[i:i + 50_000])
    return len(rows) + len(bars["open_time"])


def measure(url: str, symbol: str, day: date) -> None:
    engine = make_engine(url)
    upgrade(engine)
    stored = fill(engine, symbol, day)
    counts = {"market_data.kline": 0, "market_data.trade": 0}

    def count(topic: str):
        def handler(event: dict) -> None:
            counts[topic] += 1
        return handler

    bus = EventBus()
    for topic in counts:
        bus.subscribe(topic, count(topic))
    stats = replay(engine, bus, [symbol], day, day)
    assert stats.events == stored == sum(counts.values()), (stats.events, stored, counts)
    print(f"replay {symbol} {day}: {stats.events} events ({stats.klines} klines, {stats.trades} trades) in "
          f"{stats.seconds:.2f} s = {stats.rate:,.0f} events/s (target >= 100,000), reads included")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--day", default="2024-03-01")
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()
    day = date.fromisoformat(args.day)
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            measure(f"sqlite:///{tmp}/bench.db", args.symbol, day)
    else:
        with scratch_database("marketdata_bench_replay") as url:
            measure(url, args.symbol, day)


if __name__ == "__main__":
    main()
