"""mark_price_klines, index_price_klines, premium_index_klines

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

Frozen copy of storage/tables_price_klines.py as first released: later changes go into new revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from marketdata_assets.storage.types import ExactDecimal, UtcTimestamp

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLES = ("mark_price_klines", "index_price_klines", "premium_index_klines")


def upgrade() -> None:
    for name in TABLES:
        op.create_table(
            name,
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
            sa.UniqueConstraint("symbol", "interval", "open_time", name=f"uq_{name}_symbol_interval_open_time"),
            sa.CheckConstraint("source IN ('archive', 'rest', 'stream')", name=f"ck_{name}_source"),
        )
        op.create_index(f"ix_{name}_symbol_open_time", name, ["symbol", sa.text("open_time DESC")])


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_index(f"ix_{name}_symbol_open_time", table_name=name)
        op.drop_table(name)
