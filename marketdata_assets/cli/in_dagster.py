"""`marketdata download --in-dagster`: the same kline assets and checks the Dagster UI materializes, run in
this process with `dagster.materialize` (one range run per symbol and interval).

With DAGSTER_HOME set, the runs land in that instance (the UI shows them: materializations, per-partition
check results, lineage); without it, in an ephemeral instance. Imported only when asked for, so the
plain `marketdata download` never loads Dagster.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date

from marketdata_assets.settings import Settings

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def materialize_klines(settings: Settings, symbols: list[str], intervals: list[str], first: date, last: date,
                       on_run: Callable[[str, str, bool], None] | None = None) -> list[str]:
    """Materialize klines_<interval> and its checks for every symbol over [first, last]; returns errors."""
    import dagster as dg

    from marketdata_assets.defs import CodeLocationConfig, MarketDataResource, build_definitions
    from marketdata_assets.defs.constants import kline_asset_key

    base = CodeLocationConfig.from_env()
    config = CodeLocationConfig(
        symbols=tuple(symbols), intervals=tuple(intervals), start_date=min(base.start_date, first),
        days_per_run=base.days_per_run, repair_max_attempts=base.repair_max_attempts,
        repair_backoff_seconds=base.repair_backoff_seconds,
    )
    resource = MarketDataResource(
        database_url=settings.database_url, fapi_url=settings.fapi_url, archive_url=settings.archive_url,
        archive_listing_url=settings.archive_listing_url,
    )
    defs = build_definitions(config, resource)
    errors: list[str] = []
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    try:
        known = set(instance.get_dynamic_partitions("symbols"))
        instance.add_dynamic_partitions("symbols", [s for s in symbols if s not in known])
        for interval in intervals:
            key = kline_asset_key(interval)
            asset = defs.get_assets_def(key)
            checks = [c for c in defs.asset_checks if any(k.asset_key == key for k in c.check_keys)]
            for symbol in symbols:
                tags = {
                    RANGE_START: dg.MultiPartitionKey({"date": first.isoformat(), "symbol": symbol}),
                    RANGE_END: dg.MultiPartitionKey({"date": last.isoformat(), "symbol": symbol}),
                    "marketdata/reason": "download",
                }
                result = dg.materialize(
                    [asset, *checks], instance=instance, resources={"marketdata": resource},
                    tags={k: str(v) for k, v in tags.items()}, raise_on_error=False,
                    # the run's events are stored in the instance; the terminal shows the progress bar and table
                    run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                )
                if not result.success:
                    failure = next((e for e in result.all_events if e.is_failure), None)
                    message = failure.message if failure is not None else "run failed"
                    errors.append(f"{key.to_user_string()} {symbol} {first}..{last}: {message}")
                if on_run:
                    on_run(symbol, interval, result.success)
    finally:
        resource.close()
        instance.dispose()
    return errors
