"""agg_trades accepts source 'archive'

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

Historical aggregate trades (ingest/agg_trades.py) go into the table the stream writes, so replay and
export see one history; their rows come from data.binance.vision, hence the new source value.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agg_trades") as batch:
        batch.drop_constraint("ck_agg_trades_source", type_="check")
        batch.create_check_constraint("ck_agg_trades_source", "source IN ('stream', 'rest', 'archive')")


def downgrade() -> None:
    op.execute("DELETE FROM agg_trades WHERE source = 'archive'")
    with op.batch_alter_table("agg_trades") as batch:
        batch.drop_constraint("ck_agg_trades_source", type_="check")
        batch.create_check_constraint("ck_agg_trades_source", "source IN ('stream', 'rest')")
