"""24 h ticker snapshots: REST /fapi/v1/ticker/24hr for the configured symbols, stored as `ticker_24h` rows.

The ticker is a rolling 24 h window ending at `closeTime` (SPEC A.8), not a UTC day: there is no history
to backfill, so each run appends one snapshot per symbol (keyed on (symbol, event_time); a re-run at the
same exchange time changes nothing). The rows go to the stream's `ticker_24h` table with `event_time` =
`closeTime`, so REST snapshots and the `@ticker` stream form one series. A payload that lacks a field,
carries a non-decimal value, or answers for a symbol that was not asked for is a `TickerFormatError`
naming the symbol and the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Engine

from marketdata_assets.binance.intervals import validate_symbol
from marketdata_assets.binance.rest import BinanceRestClient
from marketdata_assets.storage.market_stats_store import MarketStatsStore
from marketdata_assets.storage.tables_stream import ticker_24h
from marketdata_assets.storage.types import to_decimal

FIELDS = {  # column -> REST field
    "price_change": "priceChange", "price_change_percent": "priceChangePercent",
    "weighted_avg_price": "weightedAvgPrice", "last_price": "lastPrice", "last_qty": "lastQty",
    "open_price": "openPrice", "high_price": "highPrice", "low_price": "lowPrice", "volume": "volume",
    "quote_volume": "quoteVolume",
}


class TickerFormatError(ValueError):
    """A 24 h ticker object that is not Binance's layout (names the symbol and the field)."""


def ticker_row(obj: Mapping[str, Any], wanted: str) -> dict:
    """One REST ticker object as a `ticker_24h` row; exact decimal text kept."""
    symbol = obj.get("symbol")
    if symbol != wanted:
        raise TickerFormatError(f"ticker/24hr for {wanted}: the answer is for symbol {symbol!r}")
    row: dict[str, Any] = {"symbol": wanted}
    try:
        for column, name in FIELDS.items():
            row[column] = to_decimal(str(obj[name]))
        for column, name in (("open_time", "openTime"), ("close_time", "closeTime"), ("first_id", "firstId"),
                             ("last_id", "lastId"), ("trade_count", "count")):
            row[column] = int(obj[name])
    except KeyError as exc:
        raise TickerFormatError(f"ticker/24hr {wanted}: field {exc.args[0]!r} missing") from None
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise TickerFormatError(f"ticker/24hr {wanted}: {exc}") from None
    row["event_time"] = row["close_time"]
    return row


def consistency_problems(row: Mapping[str, Any]) -> list[str]:
    """What a stored snapshot gets wrong: window length, id range against count, price ordering."""
    problems = []
    span = int(row["close_time"]) - int(row["open_time"])
    if not 23 * 3_600_000 <= span <= 24 * 3_600_000 + 60_000:
        problems.append(f"window of {span} ms is not 24 h")
    count = int(row["trade_count"])
    if count and int(row["last_id"]) - int(row["first_id"]) + 1 != count:
        problems.append(f"ids {row['first_id']}..{row['last_id']} do not make {count} trades")
    if count and not row["low_price"] <= row["last_price"] <= row["high_price"]:
        problems.append("last price outside [low, high]")
    return problems


def snapshot(engine: Engine, rest: BinanceRestClient, symbols: Sequence[str]) -> list[dict]:
    """Fetch and store one 24 h ticker per symbol (one request each, weight 1); returns the rows."""
    rows = [ticker_row(rest.ticker_24hr(validate_symbol(s)), s) for s in symbols]
    MarketStatsStore(engine).write(ticker_24h, rows)
    return rows
