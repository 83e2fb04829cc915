"""Tables the streaming sidecar writes (on the shared `metadata`; created by migration 0002).

Natural keys make every write idempotent: a reconnect, a rotation overlap or a REST fill that delivers
the same row twice changes nothing. Decimal values are kept exact (ExactDecimal), times are UTC.
"""

from __future__ import annotations

import sqlalchemy as sa

from marketdata_assets.storage.constraints import one_of_check
from marketdata_assets.storage.tables import BigId, Json, metadata
from marketdata_assets.storage.types import ExactDecimal, UtcTimestamp

GAP_STATES = ("open", "filled", "failed", "not_fillable")
ROW_SOURCES = ("stream", "rest")

agg_trades = sa.Table(
    "agg_trades",
    metadata,
    sa.Column("symbol", sa.String(32), primary_key=True),
    sa.Column("agg_id", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("price", ExactDecimal(), nullable=False),
    sa.Column("quantity", ExactDecimal(), nullable=False),
    sa.Column("first_trade_id", sa.BigInteger(), nullable=False),
    sa.Column("last_trade_id", sa.BigInteger(), nullable=False),
    sa.Column("trade_time", UtcTimestamp(), nullable=False),
    sa.Column("is_buyer_maker", sa.Boolean(), nullable=False),
    sa.Column("event_time", UtcTimestamp(), nullable=True),  # None for rows filled from REST
    sa.Column("source", sa.String(8), nullable=False),
    sa.Column("ingested_at", UtcTimestamp(), nullable=False),
    # 'archive': historical days from data.binance.vision (ingest/agg_trades.py; migration 0005)
    one_of_check("source", ("stream", "rest", "archive"), "ck_agg_trades_source"),
)
sa.Index("ix_agg_trades_symbol_trade_time", agg_trades.c.symbol, agg_trades.c.trade_time)

mark_price_updates = sa.Table(
    "mark_price_updates",
    metadata,
    sa.Column("symbol", sa.String(32), primary_key=True),
    sa.Column("event_time", UtcTimestamp(), primary_key=True),
    sa.Column("mark_price", ExactDecimal(), nullable=False),
    sa.Column("index_price", ExactDecimal(), nullable=True),
    sa.Column("estimated_settle_price", ExactDecimal(), nullable=True),
    sa.Column("funding_rate", ExactDecimal(), nullable=True),  # None for delivery contracts
    sa.Column("next_funding_time", UtcTimestamp(), nullable=True),
    sa.Column("ingested_at", UtcTimestamp(), nullable=False),
)

ticker_24h = sa.Table(
    "ticker_24h",
    metadata,
    sa.Column("symbol", sa.String(32), primary_key=True),
    sa.Column("event_time", UtcTimestamp(), primary_key=True),
    sa.Column("price_change", ExactDecimal(), nullable=False),
    sa.Column("price_change_percent", ExactDecimal(), nullable=False),
    sa.Column("weighted_avg_price", ExactDecimal(), nullable=False),
    sa.Column("last_price", ExactDecimal(), nullable=False),
    sa.Column("last_qty", ExactDecimal(), nullable=False),
    sa.Column("open_price", ExactDecimal(), nullable=False),
    sa.Column("high_price", ExactDecimal(), nullable=False),
    sa.Column("low_price", ExactDecimal(), nullable=False),
    sa.Column("volume", ExactDecimal(), nullable=False),
    sa.Column("quote_volume", ExactDecimal(), nullable=False),
    sa.Column("open_time", UtcTimestamp(), nullable=False),
    sa.Column("close_time", UtcTimestamp(), nullable=False),
    sa.Column("first_id", sa.BigInteger(), nullable=False),
    sa.Column("last_id", sa.BigInteger(), nullable=False),
    sa.Column("trade_count", sa.BigInteger(), nullable=False),
    sa.Column("ingested_at", UtcTimestamp(), nullable=False),
)

order_book_snapshots = sa.Table(
    "order_book_snapshots",
    metadata,
    sa.Column("symbol", sa.String(32), primary_key=True),
    sa.Column("last_update_id", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("event_time", UtcTimestamp(), nullable=True),
    sa.Column("depth", sa.Integer(), nullable=False),
    sa.Column("bids", Json, nullable=False),  # [["price", "qty"], ...] best first, exact strings
    sa.Column("asks", Json, nullable=False),
    sa.Column("ingested_at", UtcTimestamp(), nullable=False),
)
sa.Index("ix_order_book_snapshots_symbol_event_time", order_book_snapshots.c.symbol,
         order_book_snapshots.c.event_time)

stream_gaps = sa.Table(
    "stream_gaps",
    metadata,
    sa.Column("id", BigId, sa.Identity(), primary_key=True),
    sa.Column("symbol", sa.String(32), nullable=False),
    sa.Column("stream", sa.String(64), nullable=False),
    sa.Column("data_type", sa.String(16), nullable=False),
    sa.Column("interval", sa.String(8), nullable=False, server_default=""),  # "" unless a kline stream
    sa.Column("start_time", UtcTimestamp(), nullable=False),  # last message before the outage
    sa.Column("end_time", UtcTimestamp(), nullable=True),     # first message after it; None while open
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("rows_filled", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("detected_at", UtcTimestamp(), nullable=False),
    sa.Column("updated_at", UtcTimestamp(), nullable=False),
    sa.UniqueConstraint("symbol", "stream", "start_time", name="uq_stream_gaps_symbol_stream_start"),
    one_of_check("state", GAP_STATES, "ck_stream_gaps_state"),
)
sa.Index("ix_stream_gaps_state", stream_gaps.c.state)

STREAM_TABLES = (agg_trades, mark_price_updates, ticker_24h, order_book_snapshots, stream_gaps)
