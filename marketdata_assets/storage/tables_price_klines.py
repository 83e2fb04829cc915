"""Mark price, index price and premium index klines: one table per kind, each shaped like `kline_data`.

Why separate tables rather than a `kind` column on `kline_data`: the natural key stays (symbol, interval,
open_time), so the kline upsert paths (COPY + staging on PostgreSQL, executemany on SQLite), the upsert rule
and the readers work unchanged with the table as a parameter; queries never have to filter a kind out of
the (much larger) trade-kline table; and a kind can be exported, truncated or reloaded on its own. The
columns are kept identical to `kline_data` (volumes and taker columns hold Binance's "0"; `trades_count`
is the number of price samples in the bar) so one canonical frame and one schema serve every kind.
Index klines are keyed by the pair (SPEC A.4: `pair`), which for USD-M perpetuals equals the symbol.
"""

from __future__ import annotations

import sqlalchemy as sa

from marketdata_assets.binance.intervals import InvalidInputError
from marketdata_assets.binance.kline_kinds import KLINE_KINDS
from marketdata_assets.storage.tables import kline_data, kline_shaped_table

mark_price_klines = kline_shaped_table(KLINE_KINDS["markPriceKlines"].dataset)
index_price_klines = kline_shaped_table(KLINE_KINDS["indexPriceKlines"].dataset)
premium_index_klines = kline_shaped_table(KLINE_KINDS["premiumIndexKlines"].dataset)

# kind -> its table
KLINE_TABLES: dict[str, sa.Table] = {
    "klines": kline_data,
    "markPriceKlines": mark_price_klines,
    "indexPriceKlines": index_price_klines,
    "premiumIndexKlines": premium_index_klines,
}


def kline_table(kind: str) -> sa.Table:
    """The table holding klines of `kind` ("klines", "markPriceKlines", "indexPriceKlines", "premiumIndexKlines")."""
    try:
        return KLINE_TABLES[kind]
    except KeyError:
        raise InvalidInputError(f"unknown kline kind {kind!r}: expected one of {', '.join(KLINE_TABLES)}") from None
