"""The funding-rate table (on the shared `metadata`; created by migration 0003).

Key: (symbol, funding_time) with funding_time aligned to the hour (SPEC A.6: Binance stamps events a few
ms after the hour; `calc_time` keeps the exact stamp). The interval in hours is stored per event because
it differs between symbols (8/4/1 h) and changes over time.
"""

from __future__ import annotations

import sqlalchemy as sa

from marketdata_assets.storage.constraints import one_of_check
from marketdata_assets.storage.tables import metadata
from marketdata_assets.storage.types import ExactDecimal, UtcTimestamp

funding_rates = sa.Table(
    "funding_rates",
    metadata,
    sa.Column("symbol", sa.String(32), primary_key=True),
    sa.Column("funding_time", UtcTimestamp(), primary_key=True),  # aligned to the hour
    sa.Column("calc_time", UtcTimestamp(), nullable=False),       # as Binance stamped it
    sa.Column("funding_rate", ExactDecimal(), nullable=False),
    sa.Column("mark_price", ExactDecimal(), nullable=True),       # REST only (not in the archive files)
    sa.Column("funding_interval_hours", sa.Integer(), nullable=False),
    sa.Column("source", sa.String(8), nullable=False),
    sa.Column("ingested_at", UtcTimestamp(), nullable=False),
    one_of_check("source", ("archive", "rest"), "ck_funding_rates_source"),
    one_of_check("funding_interval_hours", (1, 2, 4, 8), "ck_funding_rates_interval"),
)
