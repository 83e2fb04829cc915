"""Sensors that keep the kline history complete without anyone watching.

(gap_repair, which turns a failed `gaps` check into a run of exactly that partition, is built with every
other dataset's repair sensor by defs/datasets/repair.py.)

archive_settlement: a day loaded from REST is provisional. Once data.binance.vision publishes the day's
file (its .CHECKSUM appears), the partition is re-run: the loader takes the archive, corrects differing
rows (the archive is the settled truth) and records the checksum, which ends the day's provisional state.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from marketdata_assets.defs.constants import REASON_SETTLEMENT, TAG_INTERVAL, TAG_REASON, kline_asset_key
from marketdata_assets.defs.datasets.repair import MAX_RUNS_PER_TICK
from marketdata_assets.defs.klines.spec import trade_check_keys
from marketdata_assets.defs.partitions import SYMBOLS_PARTITIONS_NAME, partition_key
from marketdata_assets.defs.resources import MarketDataResource
from marketdata_assets.ingest.klines import DATASET
from marketdata_assets.storage.ledger import provisional_days


def kline_run_request(interval: str, pk: str, run_key: str, tags: dict[str, str]) -> dg.RunRequest:
    """A run of one kline partition with all its checks (so the run shows whether it fixed the day)."""
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=[kline_asset_key(interval)],
        asset_check_keys=trade_check_keys(interval),
        partition_key=pk,
        tags={TAG_INTERVAL: interval, **tags},
    )


def build_archive_settlement_sensor(
    intervals: Sequence[str], start_date: date, interval_seconds: int = 3600, scan_limit: int = 200
) -> dg.SensorDefinition:
    @dg.sensor(
        name="archive_settlement",
        minimum_interval_seconds=interval_seconds,
        target=dg.AssetSelection.assets(*[kline_asset_key(i) for i in intervals]),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Re-runs days loaded from REST once the archive publishes them, so the archive settles "
                    "them (differences corrected, checksum recorded).",
    )
    def archive_settlement(context: dg.SensorEvaluationContext, marketdata: MarketDataResource):
        from marketdata_assets.binance.archive import archive_path

        runtime = marketdata.runtime()
        yesterday = datetime.now(UTC).date() - timedelta(days=1)
        known_symbols = set(context.instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME))
        candidates = [
            (symbol, interval, day)
            for symbol, interval, day in provisional_days(runtime.engine, DATASET, intervals, yesterday, scan_limit)
            if symbol in known_symbols and day >= start_date
        ]
        runs: list[dg.RunRequest] = []
        waiting = 0
        for symbol, interval, day in candidates:
            if len(runs) >= MAX_RUNS_PER_TICK:
                break
            checksum = runtime.archive.fetch_checksum(archive_path("klines", symbol, day, interval=interval))
            if checksum is None:
                waiting += 1
                continue
            pk = str(partition_key(day, symbol))
            runs.append(kline_run_request(
                interval, pk, run_key=f"{REASON_SETTLEMENT}:klines_{interval}:{pk}:{checksum[:16]}",
                tags={TAG_REASON: REASON_SETTLEMENT},
            ))
        if not runs:
            return dg.SkipReason(f"{len(candidates)} provisional day(s), {waiting} not in the archive yet")
        return runs

    return archive_settlement
