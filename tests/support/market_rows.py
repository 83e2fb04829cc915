"""Helpers for export/replay tests: fill the store from the simulator through the real clients."""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa

from marketdata_assets.binance.archive import ArchiveClient
from marketdata_assets.binance.rest import BinanceRestClient
from marketdata_assets.ingest.klines import KlineLoader
from marketdata_assets.storage.tables_stream import agg_trades


def load_klines(sim, repo, symbols: list[str], interval: str, days: list[date]) -> None:
    with BinanceRestClient(sim.url) as rest, ArchiveClient(sim.url) as archive:
        loader = KlineLoader(repo.engine, rest, archive, interval=interval)
        for symbol in symbols:
            loader.load(symbol, days)


def load_agg_trades(sim, engine, symbol: str, start_ms: int, end_ms: int, source: str = "rest") -> list[dict]:
    """The simulator's aggregate trades with T in [start_ms, end_ms), stored as the sidecar stores them."""
    with BinanceRestClient(sim.url) as rest:
        trades = list(rest.agg_trades_range(symbol, start_ms, end_ms))
    now = datetime.now(UTC)
    rows = [{"symbol": symbol, "agg_id": int(t["a"]), "price": t["p"], "quantity": t["q"],
             "first_trade_id": int(t["f"]), "last_trade_id": int(t["l"]), "trade_time": int(t["T"]),
             "is_buyer_maker": bool(t["m"]), "event_time": None, "source": source, "ingested_at": now}
            for t in trades]
    if rows:
        with engine.begin() as conn:
            conn.execute(sa.insert(agg_trades), rows)
    return trades
