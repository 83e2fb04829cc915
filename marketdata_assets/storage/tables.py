"""The market-data tables (SQLAlchemy Core, one `metadata`).

The migrations in `migrations/versions` create exactly these; `metadata` is what queries are built from.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from marketdata_assets.binance.klines import SOURCES as KLINE_SOURCES
from marketdata_assets.storage.constraints import one_of_check
from marketdata_assets.storage.types import ExactDecimal, UtcTimestamp

metadata = sa.MetaData()

# SQLite only auto-numbers an INTEGER PRIMARY KEY (a rowid alias); PostgreSQL gets BIGINT IDENTITY.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

KLINE_VALUE_COLUMNS = (
    "open", "high", "low", "close", "volume", "close_time", "quote_volume", "trades_count",
    "taker_buy_volume", "taker_buy_quote_volume",
)

def kline_shaped_table(name: str) -> sa.Table:
    """A table in the kline layout (klines, and mark/index/premium price klines), keyed by (symbol,
    interval, open_time) and nothing else: every reader filters symbol and interval, and each further
    index cost every inserted row (migration 0009)."""
    return sa.Table(
        name,
        metadata,
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
        sa.PrimaryKeyConstraint("symbol", "interval", "open_time", name=f"pk_{name}"),
        one_of_check("source", KLINE_SOURCES, f"ck_{name}_source"),
    )


kline_data = kline_shaped_table("kline_data")

# storage.ledger.LedgerStatus's values (ledger.py asserts they are these)
LEDGER_STATUSES = ("complete", "incomplete", "failed", "out_of_range")

partition_ledger = sa.Table(
    "partition_ledger",
    metadata,
    sa.Column("dataset", sa.String(32), primary_key=True),
    sa.Column("symbol", sa.String(32), primary_key=True),
    sa.Column("interval", sa.String(8), primary_key=True),  # "" when the dataset has no interval
    sa.Column("day", sa.Date(), primary_key=True),
    sa.Column("expected_rows", sa.Integer(), nullable=False),
    sa.Column("actual_rows", sa.Integer(), nullable=False),
    sa.Column("missing", Json, nullable=False),  # [Gap.as_dict(), ...] with their class
    sa.Column("sources", Json, nullable=False),  # {"archive": 1440, "rest": 0}
    sa.Column("archive_checksum", sa.String(64), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("check_status", sa.String(16), nullable=True),
    sa.Column("repair_attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("updated_at", UtcTimestamp(), nullable=False),
    # sha256 of the day's rows as its load stored them (storage/day_content.py); None: loaded before 0007
    sa.Column("content_digest", sa.String(64), nullable=True),
    # exchange time the archive file was last known to carry archive_checksum (None: before 0008)
    sa.Column("archive_checked_at", UtcTimestamp(), nullable=True),
    one_of_check("status", LEDGER_STATUSES, "ck_partition_ledger_status"),
)
