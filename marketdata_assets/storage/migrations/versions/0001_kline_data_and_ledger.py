"""kline_data and partition_ledger

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Frozen copy of the tables as first released: later changes go into new revisions, never here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from marketdata_assets.storage.types import ExactDecimal, UtcTimestamp

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "kline_data",
        sa.Column("id", BigId, sa.Identity(), primary_key=True),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("interval", sa.String(8), nullable=False),
        sa.Column("open_time", UtcTimestamp(), nullable=False),
        sa.Column("open", ExactDecimal(), nullable=False),
        sa.Column("high", ExactDecimal(), nullable=False),
        sa.Column("low", ExactDecimal(), nullable=False),
        sa.Column("close", ExactDecimal(), nullable=False),
        sa.Column("volume", ExactDecimal(), nullable=False),
        sa.Column("close_time", UtcTimestamp(), nullable=False),
        sa.Column("quote_volume", ExactDecimal(), nullable=False),
        sa.Column("trades_count", sa.BigInteger(), nullable=False),
        sa.Column("taker_buy_volume", ExactDecimal(), nullable=False),
        sa.Column("taker_buy_quote_volume", ExactDecimal(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("ingested_at", UtcTimestamp(), nullable=False),
        sa.UniqueConstraint(
            "symbol", "interval", "open_time", name="uq_kline_data_symbol_interval_open_time"
        ),
        sa.CheckConstraint("source IN ('archive', 'rest', 'stream')", name="ck_kline_data_source"),
    )
    op.create_index(
        "ix_kline_data_symbol_open_time", "kline_data", ["symbol", sa.text("open_time DESC")]
    )
    op.create_table(
        "partition_ledger",
        sa.Column("dataset", sa.String(32), primary_key=True),
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("interval", sa.String(8), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("expected_rows", sa.Integer(), nullable=False),
        sa.Column("actual_rows", sa.Integer(), nullable=False),
        sa.Column("missing", Json, nullable=False),
        sa.Column("sources", Json, nullable=False),
        sa.Column("archive_checksum", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("check_status", sa.String(16), nullable=True),
        sa.Column("repair_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", UtcTimestamp(), nullable=False),
        sa.CheckConstraint(
            "status IN ('complete', 'incomplete', 'failed', 'out_of_range')",
            name="ck_partition_ledger_status",
        ),
    )


def downgrade() -> None:
    op.drop_table("partition_ledger")
    op.drop_index("ix_kline_data_symbol_open_time", table_name="kline_data")
    op.drop_table("kline_data")
