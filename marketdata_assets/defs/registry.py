"""Every daily dataset the code location serves, as specs (defs/datasets/spec.py), for one configuration.

Adding a dataset: write its loader (ingest/) and its spec (defs/<area>/spec.py), and list it here.
"""

from __future__ import annotations

from marketdata_assets.defs.agg_trades.spec import agg_trades_spec
from marketdata_assets.defs.config import CodeLocationConfig
from marketdata_assets.defs.datasets.spec import DailyDatasetSpec
from marketdata_assets.defs.funding.spec import funding_spec
from marketdata_assets.defs.klines.spec import kline_specs
from marketdata_assets.defs.market_stats.spec import stats_specs


def dataset_specs(config: CodeLocationConfig) -> list[DailyDatasetSpec]:
    return [
        *kline_specs(config.intervals, config.days_per_run),
        funding_spec(config.days_per_run),
        agg_trades_spec(),
        *stats_specs(),
    ]
