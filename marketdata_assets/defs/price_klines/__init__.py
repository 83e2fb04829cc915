"""Mark price, index price and premium index kline assets (`mark_price_klines_1m`, ...) and their checks."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from marketdata_assets.defs.price_klines.assets import build_price_kline_asset, price_kline_intervals
from marketdata_assets.defs.price_klines.checks import build_price_kline_checks
from marketdata_assets.storage.tables_price_klines import PRICE_KLINE_KINDS


def build_price_klines(intervals: Sequence[str], partitions_def: dg.PartitionsDefinition,
                       days_per_run: int) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    """Assets and checks for every kind and every configured interval that has price klines."""
    pairs = [(kind, i) for kind in PRICE_KLINE_KINDS for i in price_kline_intervals(intervals)]
    assets = [build_price_kline_asset(kind, i, partitions_def, days_per_run) for kind, i in pairs]
    checks = [build_price_kline_checks(kind, i, partitions_def) for kind, i in pairs]
    return assets, checks
