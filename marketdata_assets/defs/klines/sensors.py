"""Sensors that keep the kline history complete without anyone watching.

gap_repair: a failed `gaps` check (fillable bars: the exchange has them) becomes a run of exactly that
partition. Bounded: at most `max_attempts` per failure episode (the ledger's `repair_attempts`, reset when
the check passes), with exponential backoff between attempts; run keys make a tick idempotent; run tags
say why the run exists. Exchange gaps pass the check, so nothing retries them.

archive_settlement: a day loaded from REST is provisional. Once data.binance.vision publishes the day's
file (its .CHECKSUM appears), the partition is re-run: the loader takes the archive, corrects differing
rows (the archive is the settled truth) and records the checksum, which ends the day's provisional state.
"""

import json
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from marketdata_assets.defs.constants import (
    GAP_CHECK,
    REASON_REPAIR,
    REASON_SETTLEMENT,
    TAG_GAPS,
    TAG_INTERVAL,
    TAG_REASON,
    TAG_REPAIR_ATTEMPT,
    interval_of,
    kline_asset_key,
)
from marketdata_assets.defs.klines.checks import check_names
from marketdata_assets.defs.klines.ledger import add_repair_attempt, provisional_days, repair_attempts
from marketdata_assets.defs.klines.partitions import (
    SYMBOLS_PARTITIONS_NAME,
    parse_partition_key,
    partition_key,
)
from marketdata_assets.defs.resources import MarketDataResource

MAX_RUNS_PER_TICK = 50


def _check_keys(interval: str) -> list[dg.AssetCheckKey]:
    return [dg.AssetCheckKey(kline_asset_key(interval), name) for name in check_names(interval)]


def kline_run_request(interval: str, pk: str, run_key: str, tags: dict[str, str]) -> dg.RunRequest:
    """A run of one kline partition with all its checks (so the run shows whether it fixed the day)."""
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=[kline_asset_key(interval)],
        asset_check_keys=_check_keys(interval),
        partition_key=pk,
        tags={TAG_INTERVAL: interval, **tags},
    )


def backoff_seconds(base: int, attempt: int) -> float:
    """Wait before attempt `attempt + 1`: base, 4 x base, 16 x base, ..."""
    return float(base) * 4 ** max(attempt - 1, 0)


def build_gap_repair_sensor(
    intervals: Sequence[str], max_attempts: int = 3, backoff_base_seconds: int = 600, interval_seconds: int = 60
) -> dg.SensorDefinition:
    gap_keys = [dg.AssetCheckKey(kline_asset_key(i), GAP_CHECK) for i in intervals]

    @dg.sensor(
        name="gap_repair",
        minimum_interval_seconds=interval_seconds,
        target=dg.AssetSelection.assets(*[kline_asset_key(i) for i in intervals]),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Re-runs partitions whose gaps check failed: at most {max_attempts} attempts per "
                    f"failure, backoff from {backoff_base_seconds}s, tagged {TAG_REASON}={REASON_REPAIR}.",
    )
    def gap_repair(context: dg.SensorEvaluationContext, marketdata: MarketDataResource):
        state = json.loads(context.cursor) if context.cursor else {}
        after: int | None = state.get("after")
        # "klines_1h|2024-01-01|BTCUSDT" -> {"not_before": epoch s, "attempts": n}
        pending: dict[str, dict] = state.get("pending", {})
        infos = context.instance.event_log_storage.get_asset_check_partition_info(gap_keys, after_storage_id=after)
        for info in infos:
            if info.partition_key is None:
                continue
            after = max(after or 0, info.latest_check_event_storage_id or 0)
            entry = f"{info.check_key.asset_key.path[-1]}|{info.partition_key}"
            if info.latest_execution_status == AssetCheckExecutionRecordStatus.FAILED:
                pending.setdefault(entry, {"not_before": 0.0, "attempts": 0})
            elif info.latest_execution_status == AssetCheckExecutionRecordStatus.SUCCEEDED:
                pending.pop(entry, None)

        now = time.time()
        known_symbols = set(context.instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME))
        runs: list[dg.RunRequest] = []
        runtime = marketdata.runtime() if pending else None
        engine = runtime.engine if runtime else None
        for entry, item in sorted(pending.items()):
            if len(runs) >= MAX_RUNS_PER_TICK or now < item["not_before"]:
                continue
            asset_name, pk = entry.split("|", 1)
            interval = interval_of(dg.AssetKey(asset_name))
            day, symbol = parse_partition_key(pk)
            if interval not in intervals or symbol not in known_symbols:
                pending.pop(entry)
                continue
            attempts = max(item["attempts"], repair_attempts(engine, symbol, interval, day))
            if attempts >= max_attempts:
                context.log.warning(f"{asset_name} {pk}: gaps still failing after {attempts} repair attempt(s); "
                                    "giving up (see `marketdata gaps`)")
                pending.pop(entry)
                continue
            attempt = max(add_repair_attempt(runtime.repo, symbol, interval, day), attempts + 1)
            item.update(attempts=attempt, not_before=now + backoff_seconds(backoff_base_seconds, attempt))
            runs.append(kline_run_request(
                interval, pk, run_key=f"{REASON_REPAIR}:{asset_name}:{pk}:{attempt}",
                tags={TAG_REASON: REASON_REPAIR, TAG_REPAIR_ATTEMPT: str(attempt),
                      TAG_GAPS: f"{asset_name}:{GAP_CHECK} failed for {pk}"},
            ))
        cursor = json.dumps({"after": after, "pending": pending}, sort_keys=True)
        if not runs:
            return dg.SensorResult(skip_reason=f"nothing to repair ({len(pending)} waiting for backoff or a run)",
                                   cursor=cursor)
        return dg.SensorResult(run_requests=runs, cursor=cursor)

    return gap_repair


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
            for symbol, interval, day in provisional_days(runtime.engine, list(intervals), yesterday, scan_limit)
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
