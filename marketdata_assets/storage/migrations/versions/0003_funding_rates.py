"""funding_rates

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

Frozen copy of storage/tables_funding.py as first released: later changes go into new revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from marketdata_assets.storage.types import ExactDecimal, UtcTimestamp

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "funding_rates",
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("funding_time", UtcTimestamp(), primary_key=True),
        sa.Column("calc_time", UtcTimestamp(), nullable=False),
        sa.Column("funding_rate", ExactDecimal(), nullable=False),
        sa.Column("mark_price", ExactDecimal(), nullable=True),
        sa.Column("funding_interval_hours", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("ingested_at", UtcTimestamp(), nullable=False),
        sa.CheckConstraint("source IN ('archive', 'rest')", name="ck_funding_rates_source"),
        sa.CheckConstraint("funding_interval_hours IN (1, 2, 4, 8)", name="ck_funding_rates_interval"),
    )


def downgrade() -> None:
    op.drop_table("funding_rates")
