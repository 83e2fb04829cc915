"""Tables of the archive-only daily statistics (created by migration 0006).

24 h ticker snapshots from REST go to the stream's `ticker_24h` (tables_stream.py): one table per kind of data.

- `open_interest_metrics`: the archive's daily `metrics` files, one row per 5 minutes (stamped at the
  interval's end, so a day's rows run from 00:05 to 24:00).
- `book_depth`: the archive's daily `bookDepth` files, one row per snapshot (about every 30 s) and band
  (percentage from the mid price, signed: bids negative). `percentage` is stored normalised to two
  decimals so that "-5" and "-5.00" are one key.
Values are the exact decimal text Binance sent (ExactDecimal), times UTC (UtcTimestamp).
"""

from __future__ import annotations

import sqlalchemy as sa

from marketdata_assets.storage.constraints import one_of_check
from marketdata_assets.storage.tables import metadata
from marketdata_assets.storage.types import ExactDecimal, UtcTimestamp

METRICS_COLUMNS = ("sum_open_interest", "sum_open_interest_value", "count_toptrader_long_short_ratio",
                   "sum_toptrader_long_short_ratio", "count_long_short_ratio", "sum_taker_long_short_vol_ratio")

open_interest_metrics = sa.Table(
    "open_interest_metrics",
    metadata,
    sa.Column("symbol", sa.String(32), primary_key=True),
    sa.Column("create_time", UtcTimestamp(), primary_key=True),
    *[sa.Column(name, ExactDecimal(), nullable=True) for name in METRICS_COLUMNS],
    sa.Column("source", sa.String(8), nullable=False),
    sa.Column("ingested_at", UtcTimestamp(), nullable=False),
    one_of_check("source", ("archive",), "ck_open_interest_metrics_source"),
)

book_depth = sa.Table(
    "book_depth",
    metadata,
    sa.Column("symbol", sa.String(32), primary_key=True),
    sa.Column("snapshot_time", UtcTimestamp(), primary_key=True),
    sa.Column("percentage", ExactDecimal(), primary_key=True),
    sa.Column("depth", ExactDecimal(), nullable=False),
    sa.Column("notional", ExactDecimal(), nullable=False),
    sa.Column("source", sa.String(8), nullable=False),
    sa.Column("ingested_at", UtcTimestamp(), nullable=False),
    one_of_check("source", ("archive",), "ck_book_depth_source"),
)
