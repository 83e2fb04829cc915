"""The Dagster side of marketdata: assets, checks, partitions, resources, sensors and schedules.

`build_definitions(config)` composes the domains (`exchange/`, `klines/`) for one configuration;
`marketdata_assets.definitions` calls it with the environment's configuration.
"""

from __future__ import annotations

import dagster as dg

from marketdata_assets.defs.agg_trades.assets import build_agg_trades_asset, build_agg_trades_checks
from marketdata_assets.defs.config import CodeLocationConfig
from marketdata_assets.defs.datasets.repair_sensors import (
    build_dataset_repair_sensors,
    plain_ledger,
    price_kline_ledger,
)
from marketdata_assets.defs.exchange.assets import build_exchange_info_asset
from marketdata_assets.defs.exchange.sensors import build_symbol_discovery_sensor
from marketdata_assets.defs.funding.assets import build_funding_asset, build_funding_checks
from marketdata_assets.defs.klines.assets import build_kline_asset
from marketdata_assets.defs.klines.checks import build_kline_checks
from marketdata_assets.defs.klines.schedules import build_daily_schedule
from marketdata_assets.defs.klines.sensors import build_archive_settlement_sensor, build_gap_repair_sensor
from marketdata_assets.defs.market_stats.assets import build_stats_asset, build_stats_checks
from marketdata_assets.defs.market_stats.ticker import ticker_24h_asset, ticker_24h_check, ticker_24h_schedule
from marketdata_assets.defs.partitions import kline_partitions
from marketdata_assets.defs.price_klines import build_price_klines
from marketdata_assets.defs.quality.assets import build_quality_asset
from marketdata_assets.defs.resources import MarketDataResource
from marketdata_assets.defs.streaming.assets import build_stream_specs
from marketdata_assets.defs.streaming.sensors import build_stream_gap_repair_sensor, build_stream_monitor_sensor
from marketdata_assets.ingest.agg_trades import DATASET as AGG_DATASET
from marketdata_assets.ingest.funding import DATASET as FUNDING_DATASET
from marketdata_assets.ingest.market_stats import BOOK_DEPTH, METRICS


def build_definitions(
    config: CodeLocationConfig | None = None, marketdata: MarketDataResource | None = None
) -> dg.Definitions:
    """Every definition of the code location for `config` (default: from the environment)."""
    config = config or CodeLocationConfig.from_env()
    partitions = kline_partitions(config.start_date)
    klines = [build_kline_asset(i, partitions, config.days_per_run) for i in config.intervals]
    checks = [build_kline_checks(i, partitions) for i in config.intervals]
    price_klines, price_checks = build_price_klines(config.intervals, partitions, config.days_per_run)
    funding, agg_trades = build_funding_asset(partitions, config.days_per_run), build_agg_trades_asset(partitions)
    stats = {d.name: build_stats_asset(d, partitions) for d in (METRICS, BOOK_DEPTH)}
    dataset_checks = [*price_checks, build_funding_checks(partitions), build_agg_trades_checks(partitions),
                      *[build_stats_checks(d, partitions) for d in (METRICS, BOOK_DEPTH)]]
    repair_groups = {
        "price_klines": (price_klines, price_kline_ledger),
        "funding_rates": ([funding], plain_ledger(FUNDING_DATASET)),
        "agg_trades": ([agg_trades], plain_ledger(AGG_DATASET)),
        **{name: ([asset], plain_ledger(name)) for name, asset in stats.items()},
    }
    daily = [*klines, *price_klines, funding, agg_trades, *stats.values()]
    quality = build_quality_asset(partitions, _scored_datasets(daily), [a.key for a in daily])
    return dg.Definitions(
        assets=[build_exchange_info_asset(config.symbols), *daily, quality, ticker_24h_asset, *build_stream_specs()],
        asset_checks=[*checks, *dataset_checks, ticker_24h_check],
        sensors=[
            build_symbol_discovery_sensor(config.symbols),
            build_gap_repair_sensor(config.intervals, config.repair_max_attempts, config.repair_backoff_seconds),
            *build_dataset_repair_sensors(repair_groups, dataset_checks, config.repair_max_attempts,
                                          config.repair_backoff_seconds),
            build_archive_settlement_sensor(config.intervals, config.start_date),
            build_stream_monitor_sensor(),
            build_stream_gap_repair_sensor(config.intervals),
        ],
        schedules=[build_daily_schedule(config.intervals), ticker_24h_schedule],
        resources={"marketdata": marketdata or MarketDataResource()},
        # Steps of a run execute in the run's process: a step subprocess costs several seconds of imports
        # on a small machine, far more than a day's load; parallelism comes from runs (pool-bounded).
        executor=dg.in_process_executor,
    )


def _scored_datasets(assets: list[dg.AssetsDefinition]) -> list[tuple[str, str]]:
    """(ledger dataset, interval) of each daily asset, for the quality score: kline assets carry their
    interval (and price klines their kind) in metadata; the others are their own ledger dataset."""
    out = []
    for assets_def in assets:
        meta = assets_def.metadata_by_key[assets_def.key]
        if "kind" in meta:
            out.append(price_kline_ledger(assets_def))
        elif "interval" in meta:
            out.append(("klines", meta["interval"]))
        else:
            out.append((assets_def.key.path[-1], ""))
    return out


__all__ = ["CodeLocationConfig", "MarketDataResource", "build_definitions"]
