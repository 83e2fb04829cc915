"""Reads of the sidecar's tables for the Dagster side: stream gaps to repair and how fresh each table is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from marketdata_assets.storage.tables import kline_data
from marketdata_assets.storage.tables_stream import (
    agg_trades,
    mark_price_updates,
    order_book_snapshots,
    stream_gaps,
    ticker_24h,
)

# external asset name -> (table, time column that says when the sidecar last wrote, optional filter)
STREAM_TABLES: dict[str, tuple[sa.Table, sa.Column, sa.ColumnElement[bool] | None]] = {
    "stream_klines": (kline_data, kline_data.c.ingested_at, kline_data.c.source == "stream"),
    "stream_agg_trades": (agg_trades, agg_trades.c.ingested_at, None),
    "stream_mark_price": (mark_price_updates, mark_price_updates.c.ingested_at, None),
    "stream_ticker_24h": (ticker_24h, ticker_24h.c.ingested_at, None),
    "stream_order_books": (order_book_snapshots, order_book_snapshots.c.ingested_at, None),
}
UNFILLED_STATES = ("failed",)


@dataclass(frozen=True)
class StreamGap:
    id: int
    symbol: str
    stream: str
    data_type: str
    interval: str
    start_time: datetime
    end_time: datetime
    state: str
    last_error: str | None


def unfilled_stream_gaps(engine: Engine, since: datetime, data_types: tuple[str, ...] = ("kline", "trade"),
                         limit: int = 500) -> list[StreamGap]:
    """Closed outage windows whose holes REST could not fill inline (the sidecar marked them failed)."""
    g = stream_gaps.c
    query = (
        sa.select(g.id, g.symbol, g.stream, g.data_type, g.interval, g.start_time, g.end_time, g.state, g.last_error)
        .where(g.state.in_(UNFILLED_STATES), g.data_type.in_(data_types), g.end_time.is_not(None),
               g.end_time >= since)
        .order_by(g.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [StreamGap(*row) for row in conn.execute(query)]


def last_writes(engine: Engine) -> dict[str, datetime | None]:
    """When the sidecar last wrote to each of its tables (None: never)."""
    out: dict[str, datetime | None] = {}
    with engine.connect() as conn:
        for name, (table, column, where) in STREAM_TABLES.items():
            query = sa.select(sa.func.max(column)).select_from(table)
            if where is not None:
                query = query.where(where)
            out[name] = conn.execute(query).scalar()
    return out


def latest_tickers(engine: Engine) -> list[dict]:
    """Each symbol's latest 24 h ticker snapshot, times as epoch ms (what the consistency rules read)."""
    t = ticker_24h.c
    latest = sa.select(t.symbol, sa.func.max(t.event_time).label("event_time")).group_by(t.symbol).subquery()
    query = sa.select(ticker_24h).join(latest, sa.and_(t.symbol == latest.c.symbol,
                                                      t.event_time == latest.c.event_time))
    with engine.connect() as conn:
        rows = [dict(m) for m in conn.execute(query).mappings()]
    for row in rows:
        row["close_time"] = int(row["close_time"].timestamp() * 1000)
        row["open_time"] = int(row["open_time"].timestamp() * 1000)
    return rows


@dataclass(frozen=True)
class StoredUpTo:
    """Where the store's copy of one stream ends before a given instant (a restarted sidecar resumes there)."""

    last_ms: int            # kline: open time of the last bar; otherwise the last event or trade time
    last_agg_id: int | None = None  # aggregate trades only


# data type -> (table, time column); klines are also keyed by interval, trades carry their id
_LAST_OF = {
    "kline": (kline_data, kline_data.c.open_time),
    "trade": (agg_trades, agg_trades.c.trade_time),
    "price": (mark_price_updates, mark_price_updates.c.event_time),
    "ticker": (ticker_24h, ticker_24h.c.event_time),
    "depth": (order_book_snapshots, order_book_snapshots.c.event_time),
}


def stored_up_to(engine: Engine, symbol: str, data_type: str, interval: str | None, before: datetime,
                 ) -> StoredUpTo | None:
    """The last stored row of a stream strictly before `before` (None: nothing stored). Each query walks
    the table's (symbol, time) index backwards from `before`: rows written since are not read."""
    if data_type not in _LAST_OF:
        return None
    table, column = _LAST_OF[data_type]
    columns = [column, table.c.agg_id] if data_type == "trade" else [column]
    query = sa.select(*columns).where(table.c.symbol == symbol, column < before)
    if data_type == "kline":
        query = query.where(table.c.interval == interval)
    query = query.order_by(*(c.desc() for c in columns)).limit(1)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return StoredUpTo(int(row[0].timestamp() * 1000), int(row[1]) if data_type == "trade" else None)
