"""partition_ledger.content_digest

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

The digest of a day's stored rows as its load left them (storage/day_content.py), so that an audit can
tell later whether the table still holds exactly those rows. Days loaded before this revision have none:
their first audit records it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("partition_ledger") as batch:
        batch.add_column(sa.Column("content_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("partition_ledger") as batch:
        batch.drop_column("content_digest")
