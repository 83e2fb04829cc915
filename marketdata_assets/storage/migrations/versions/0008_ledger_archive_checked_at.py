"""partition_ledger.archive_checked_at

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

When, on the exchange's clock, the day's archive file was last known to carry the recorded checksum (loaded,
or confirmed by its .CHECKSUM or by the bucket listing's LastModified). A re-run trusts a settled day
checked within the last month without asking the network (ingest/archive_recheck.py). Days loaded before
this revision have none: their `updated_at` stands in until the next check.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from marketdata_assets.storage.types import UtcTimestamp

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("partition_ledger") as batch:
        batch.add_column(sa.Column("archive_checked_at", UtcTimestamp(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("partition_ledger") as batch:
        batch.drop_column("archive_checked_at")
