"""open_interest_metrics, book_depth

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

Frozen copy of storage/tables_market_stats.py as first released: later changes go into new revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from marketdata_assets.storage.types import ExactDecimal, UtcTimestamp

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

METRICS_COLUMNS = ("sum_open_interest", "sum_open_interest_value", "count_toptrader_long_short_ratio",
                   "sum_toptrader_long_short_ratio", "count_long_short_ratio", "sum_taker_long_short_vol_ratio")


def upgrade() -> None:
    op.create_table(
        "open_interest_metrics",
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("create_time", UtcTimestamp(), primary_key=True),
        *[sa.Column(name, ExactDecimal(), nullable=True) for name in METRICS_COLUMNS],
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("ingested_at", UtcTimestamp(), nullable=False),
        sa.CheckConstraint("source IN ('archive')", name="ck_open_interest_metrics_source"),
    )
    op.create_table(
        "book_depth",
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("snapshot_time", UtcTimestamp(), primary_key=True),
        sa.Column("percentage", ExactDecimal(), primary_key=True),
        sa.Column("depth", ExactDecimal(), nullable=False),
        sa.Column("notional", ExactDecimal(), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("ingested_at", UtcTimestamp(), nullable=False),
        sa.CheckConstraint("source IN ('archive')", name="ck_book_depth_source"),
    )


def downgrade() -> None:
    op.drop_table("book_depth")
    op.drop_table("open_interest_metrics")
