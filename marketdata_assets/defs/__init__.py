"""The Dagster side of marketdata: assets, checks, partitions, resources, sensors and schedules.

`build_definitions(config)` turns every dataset spec of the registry (defs/registry.py) into its asset,
checks and repair target with the one factory (defs/datasets/), then adds what is not a daily dataset:
exchange_info and symbol discovery, data quality, the 24 h ticker, the sidecar's tables, the kline
schedule and settlement sensor, and the daily audit of stored data. `marketdata_assets.definitions` calls
it with the environment's configuration.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import dagster as dg

from marketdata_assets.defs.automation import schedule_status
from marketdata_assets.defs.config import CodeLocationConfig
from marketdata_assets.defs.datasets.audit import build_audit_schedule
from marketdata_assets.defs.datasets.factory import build_dataset
from marketdata_assets.defs.datasets.repair import build_repair_sensors
from marketdata_assets.defs.datasets.spec import DailyDatasetSpec
from marketdata_assets.defs.exchange.assets import build_exchange_info_asset
from marketdata_assets.defs.exchange.sensors import build_symbol_discovery_sensor
from marketdata_assets.defs.klines.jobs import build_kline_jobs
from marketdata_assets.defs.klines.schedules import build_daily_schedule
from marketdata_assets.defs.klines.sensors import build_archive_settlement_sensor
from marketdata_assets.defs.market_stats.ticker import build_ticker_24h_schedule, ticker_24h_asset, ticker_24h_check
from marketdata_assets.defs.partitions import daily_symbol_partitions
from marketdata_assets.defs.quality.assets import quality_spec
from marketdata_assets.defs.registry import dataset_specs
from marketdata_assets.defs.resources import MarketDataResource, store_kind
from marketdata_assets.defs.streaming.assets import build_stream_specs
from marketdata_assets.defs.streaming.sensors import build_stream_gap_repair_sensor, build_stream_monitor_sensor


def build_definitions(
    config: CodeLocationConfig | None = None,
    marketdata: MarketDataResource | None = None,
    extra_datasets: Sequence[DailyDatasetSpec] = (),
) -> dg.Definitions:
    """Every definition of the code location for `config` (default: from the environment); `extra_datasets`
    are served beside the registry's (a plug-in, or a test's toy dataset)."""
    config = config or CodeLocationConfig.from_env()
    with warnings.catch_warnings():
        # Filtered here once: backfill_policy is "beta" and partitioned check specs are "preview" in 1.13,
        # and they are what make a symbol-year one run and attribute check results to partitions.
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return _build(config, marketdata, [*dataset_specs(config), *extra_datasets])


def _build(config: CodeLocationConfig, marketdata: MarketDataResource | None,
           specs: list[DailyDatasetSpec]) -> dg.Definitions:
    marketdata = marketdata or MarketDataResource()
    store = store_kind(marketdata)
    partitions = daily_symbol_partitions(config.start_date)
    datasets = [build_dataset(spec, partitions, store) for spec in specs]
    audit = build_audit_schedule(specs, config.audit_recent_days, config.audit_cycle_days)
    quality = build_dataset(quality_spec([spec for spec in specs if spec.scored]), partitions, store)
    return dg.Definitions(
        assets=[build_exchange_info_asset(config.symbols), *(d.asset for d in datasets), quality.asset,
                ticker_24h_asset, *build_stream_specs(store)],
        asset_checks=[*(d.checks for d in datasets if d.checks is not None), ticker_24h_check],
        sensors=[
            build_symbol_discovery_sensor(config.symbols, config.discovery_interval_seconds),
            *build_repair_sensors(specs, config.repair_max_attempts, config.repair_backoff_seconds),
            build_archive_settlement_sensor(config.intervals, config.start_date),
            build_stream_monitor_sensor(),
            build_stream_gap_repair_sensor(config.intervals),
        ],
        schedules=[build_daily_schedule(config.intervals, schedule_status("daily_refresh", config.automation)),
                   build_ticker_24h_schedule(schedule_status("ticker_24h_hourly", config.automation)),
                   *([audit] if audit else [])],
        jobs=build_kline_jobs(config.intervals),
        resources={"marketdata": marketdata},
        # Steps of a run execute in the run's process: a step subprocess costs several seconds of imports
        # on a small machine, far more than a day's load; parallelism comes from runs (pool-bounded).
        executor=dg.in_process_executor,
    )


__all__ = ["CodeLocationConfig", "DailyDatasetSpec", "MarketDataResource", "build_definitions"]
