"""One asset per (kind, interval) for mark price, index price and premium index klines, built by one factory.

Same partitions, backfill policy, pool and metadata as the kline assets (defs/klines/assets.py), and the
same loader: `KlineLoader(interval=..., kind=...)` writes rows and ledger rows in one transaction per batch. The rows go
to the kind's own table (storage/tables_price_klines.py), the ledger rows to the kind's dataset.
Intervals: the configured kline intervals that are in PRICE_KLINE_INTERVALS (1m for detail, 1h for
overviews); the other intervals are aggregates of these and are not worth a Binance request each.
"""


import warnings
from collections.abc import Sequence

import dagster as dg

from marketdata_assets.defs.constants import BINANCE_POOL, EXCHANGE_INFO_KEY, TAG_INTERVAL
from marketdata_assets.defs.klines.assets import load_partitions
from marketdata_assets.defs.resources import MarketDataResource
from marketdata_assets.storage.tables_price_klines import PRICE_KLINE_KINDS

PRICE_KLINE_INTERVALS = ("1m", "1h")
TAG_KIND = "marketdata/kline_kind"
DESCRIPTIONS = {
    "markPriceKlines": "mark price",
    "indexPriceKlines": "index price (by pair, which for USD-M perpetuals is the symbol)",
    "premiumIndexKlines": "premium index (signed: can be zero or negative)",
}


def price_kline_asset_key(kind: str, interval: str) -> dg.AssetKey:
    """`mark_price_klines_1m`, `index_price_klines_1h`, `premium_index_klines_1m`, ..."""
    return dg.AssetKey(f"{PRICE_KLINE_KINDS[kind]}_{interval}")


def price_kline_intervals(configured: Sequence[str]) -> list[str]:
    return [i for i in configured if i in PRICE_KLINE_INTERVALS]


def build_price_kline_asset(kind: str, interval: str, partitions_def: dg.PartitionsDefinition,
                            days_per_run: int) -> dg.AssetsDefinition:
    key = price_kline_asset_key(kind, interval)
    table = PRICE_KLINE_KINDS[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)

        @dg.asset(
            key=key,
            partitions_def=partitions_def,
            backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=days_per_run),
            pool=BINANCE_POOL,
            deps=[EXCHANGE_INFO_KEY],
            group_name="price_klines",
            kinds={"python", "binance"},
            tags={TAG_INTERVAL: interval, TAG_KIND: kind},
            metadata={"interval": interval, "table": table, "kind": kind},
            description=(
                f"Binance USD-M Futures {DESCRIPTIONS[kind]} {interval} klines, one partition per UTC day and "
                f"symbol: archive first (sha256 verified), REST for the rest and every hole. Rows in `{table}` "
                "(volumes are Binance's \"0\"), per-day figures in `partition_ledger`."
            ),
        )
        def _price_klines(context: dg.AssetExecutionContext, marketdata: MarketDataResource) -> dg.MaterializeResult:
            return load_partitions(context, marketdata, interval, context.partition_keys, key=key, kind=kind)

    return _price_klines
