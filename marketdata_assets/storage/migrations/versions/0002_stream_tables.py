"""stream tables: agg_trades, mark_price_updates, ticker_24h, order_book_snapshots, stream_gaps

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Frozen copy of storage/tables_stream.py as first released: later changes go into new revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from marketdata_assets.storage.types import ExactDecimal, UtcTimestamp

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "agg_trades",
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("agg_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("price", ExactDecimal(), nullable=False),
        sa.Column("quantity", ExactDecimal(), nullable=False),
        sa.Column("first_trade_id", sa.BigInteger(), nullable=False),
        sa.Column("last_trade_id", sa.BigInteger(), nullable=False),
        sa.Column("trade_time", UtcTimestamp(), nullable=False),
        sa.Column("is_buyer_maker", sa.Boolean(), nullable=False),
        sa.Column("event_time", UtcTimestamp(), nullable=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("ingested_at", UtcTimestamp(), nullable=False),
        sa.CheckConstraint("source IN ('stream', 'rest')", name="ck_agg_trades_source"),
    )
    op.create_index("ix_agg_trades_symbol_trade_time", "agg_trades", ["symbol", "trade_time"])
    op.create_table(
        "mark_price_updates",
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("event_time", UtcTimestamp(), primary_key=True),
        sa.Column("mark_price", ExactDecimal(), nullable=False),
        sa.Column("index_price", ExactDecimal(), nullable=True),
        sa.Column("estimated_settle_price", ExactDecimal(), nullable=True),
        sa.Column("funding_rate", ExactDecimal(), nullable=True),
        sa.Column("next_funding_time", UtcTimestamp(), nullable=True),
        sa.Column("ingested_at", UtcTimestamp(), nullable=False),
    )
    decimals = ("price_change", "price_change_percent", "weighted_avg_price", "last_price", "last_qty",
                "open_price", "high_price", "low_price", "volume", "quote_volume")
    op.create_table(
        "ticker_24h",
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("event_time", UtcTimestamp(), primary_key=True),
        *[sa.Column(name, ExactDecimal(), nullable=False) for name in decimals],
        sa.Column("open_time", UtcTimestamp(), nullable=False),
        sa.Column("close_time", UtcTimestamp(), nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("trade_count", sa.BigInteger(), nullable=False),
        sa.Column("ingested_at", UtcTimestamp(), nullable=False),
    )
    op.create_table(
        "order_book_snapshots",
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("last_update_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("event_time", UtcTimestamp(), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("bids", Json, nullable=False),
        sa.Column("asks", Json, nullable=False),
        sa.Column("ingested_at", UtcTimestamp(), nullable=False),
    )
    op.create_index("ix_order_book_snapshots_symbol_event_time", "order_book_snapshots",
                    ["symbol", "event_time"])
    op.create_table(
        "stream_gaps",
        sa.Column("id", BigId, sa.Identity(), primary_key=True),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("data_type", sa.String(16), nullable=False),
        sa.Column("interval", sa.String(8), nullable=False, server_default=""),
        sa.Column("start_time", UtcTimestamp(), nullable=False),
        sa.Column("end_time", UtcTimestamp(), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("rows_filled", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("detected_at", UtcTimestamp(), nullable=False),
        sa.Column("updated_at", UtcTimestamp(), nullable=False),
        sa.UniqueConstraint("symbol", "stream", "start_time", name="uq_stream_gaps_symbol_stream_start"),
        sa.CheckConstraint("state IN ('open', 'filled', 'failed', 'not_fillable')",
                           name="ck_stream_gaps_state"),
    )
    op.create_index("ix_stream_gaps_state", "stream_gaps", ["state"])


def downgrade() -> None:
    op.drop_index("ix_stream_gaps_state", table_name="stream_gaps")
    op.drop_table("stream_gaps")
    op.drop_index("ix_order_book_snapshots_symbol_event_time", table_name="order_book_snapshots")
    op.drop_table("order_book_snapshots")
    op.drop_table("ticker_24h")
    op.drop_table("mark_price_updates")
    op.drop_index("ix_agg_trades_symbol_trade_time", table_name="agg_trades")
    op.drop_table("agg_trades")
