"""The daily refresh: at 00:15 UTC, yesterday for every symbol and every kline interval.

One run per symbol covering all kline assets (they share the partition space), not one per interval:
fewer run starts, and the pool still bounds concurrent Binance access. Symbols are the `symbols`
partitions minus those the latest `exchange_info` no longer lists as trading (delisted symbols stop
being scheduled but keep their history). Yesterday's archive file is not out yet at 00:15, so these days
load from REST and the archive_settlement sensor settles them later.
"""

from collections.abc import Sequence
from datetime import timedelta

import dagster as dg

from marketdata_assets.defs.constants import REASON_DAILY, TAG_REASON, kline_asset_key
from marketdata_assets.defs.exchange.assets import latest_trading_symbols
from marketdata_assets.defs.klines.spec import trade_check_keys
from marketdata_assets.defs.partitions import SYMBOLS_PARTITIONS_NAME, partition_key

DAILY_CRON = "15 0 * * *"


def build_daily_schedule(intervals: Sequence[str],
                         default_status: dg.DefaultScheduleStatus) -> dg.ScheduleDefinition:
    keys = [kline_asset_key(i) for i in intervals]
    check_keys = [key for i in intervals for key in trade_check_keys(i)]

    @dg.schedule(
        name="daily_refresh",
        cron_schedule=DAILY_CRON,
        execution_timezone="UTC",
        target=dg.AssetSelection.assets(*keys),
        default_status=default_status,
        description="Yesterday's klines for every trading symbol and every interval, at 00:15 UTC.",
    )
    def daily_refresh(context: dg.ScheduleEvaluationContext):
        yesterday = (context.scheduled_execution_time - timedelta(days=1)).date()
        symbols = context.instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME)
        trading = latest_trading_symbols(context.instance)
        if trading is not None:
            symbols = [s for s in symbols if s in trading]
        if not symbols:
            return dg.SkipReason("no trading symbols in the `symbols` partitions yet (symbol_discovery adds them)")
        return [
            dg.RunRequest(
                run_key=f"{REASON_DAILY}:{yesterday.isoformat()}:{symbol}",
                asset_selection=keys,
                asset_check_keys=check_keys,
                partition_key=str(partition_key(yesterday, symbol)),
                tags={TAG_REASON: REASON_DAILY},
            )
            for symbol in sorted(symbols)
        ]

    return daily_refresh
