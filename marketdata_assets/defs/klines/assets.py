"""One kline asset per interval, built by one factory, each partitioned by daily date x dynamic symbol.

Every run, of one partition or of a range (BackfillPolicy.multi_run: a symbol-year is one run, not 365),
calls `KlineLoader.load`, the same function as `marketdata download`. The loader writes rows and ledger
rows in one transaction per batch, so a day that fails is never marked complete. Range runs report each
day as an asset observation on its own partition; the materialization carries the range summary.
"""

import warnings
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg

from marketdata_assets.binance.intervals import InvalidInputError, day_start_ms
from marketdata_assets.defs.constants import BINANCE_POOL, EXCHANGE_INFO_KEY, TAG_INTERVAL, kline_asset_key
from marketdata_assets.defs.datasets.common import run_partitions
from marketdata_assets.defs.klines.metadata import day_metadata, preview, range_metadata
from marketdata_assets.defs.partitions import partition_key
from marketdata_assets.defs.resources import MarketDataResource
from marketdata_assets.ingest.contract import DayResult
from marketdata_assets.ingest.klines import KIND_DATASETS

OBSERVE_EVERY_DAY_UP_TO = 62
DESCRIPTION = (
    "Binance USD-M Futures {interval} klines, one partition per UTC day and symbol. Settled days come from "
    "the data.binance.vision archive (sha256 verified), the rest and every archive hole from REST; what REST "
    "does not have either is recorded as an exchange gap. Rows live in the `kline_data` table, per-day "
    "figures in `partition_ledger`."
)


def build_kline_asset(
    interval: str, partitions_def: dg.PartitionsDefinition, days_per_run: int
) -> dg.AssetsDefinition:
    """The `klines_<interval>` asset."""
    key = kline_asset_key(interval)
    with warnings.catch_warnings():
        # backfill_policy is "beta" in 1.13; multi-run backfills are what make a symbol-year one run
        warnings.simplefilter("ignore", dg.BetaWarning)
        return _decorate(key, interval, partitions_def, days_per_run)


def _decorate(key: dg.AssetKey, interval: str, partitions_def: dg.PartitionsDefinition,
              days_per_run: int) -> dg.AssetsDefinition:
    @dg.asset(
        key=key,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=days_per_run),
        pool=BINANCE_POOL,
        deps=[EXCHANGE_INFO_KEY],
        group_name="klines",
        kinds={"python", "binance"},
        tags={TAG_INTERVAL: interval},
        metadata={"interval": interval, "table": "kline_data"},
        description=DESCRIPTION.format(interval=interval),
    )
    def _klines(context: dg.AssetExecutionContext, marketdata: MarketDataResource) -> dg.MaterializeResult:
        return load_partitions(context, marketdata, interval, context.partition_keys)

    return _klines


def _failure(name: str, message: str, keys: Sequence[str]) -> dg.Failure:
    shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    return dg.Failure(description=f"{name} partition(s) {shown}: {message}")


def load_partitions(
    context: dg.AssetExecutionContext, marketdata: MarketDataResource, interval: str, keys: Sequence[str],
    *, key: dg.AssetKey | None = None, kind: str = "klines",
) -> dg.MaterializeResult:
    """Load the run's partitions with the shared loader (trade klines, or a price-kline `kind`); report per
    day; fail naming every failed day."""
    key = key or kline_asset_key(interval)
    name = key.path[-1]
    grouped = run_partitions(name, keys)
    runtime = marketdata.runtime()
    loader = runtime.kline_loader(interval, kind)
    results: list[DayResult] = []
    for symbol, days in grouped.items():
        try:
            loaded = loader.load(symbol, days)
        except InvalidInputError as exc:
            raise _failure(name, str(exc), [str(partition_key(d, symbol)) for d in days]) from None
        rows = sum(r.stored_rows for r in loaded)
        context.log.info(f"{symbol} {kind} {interval}: {len(loaded)} day(s), {rows} rows stored")
        results += loaded

    if len(results) > 1:
        # Range run: Dagster puts the same materialization metadata on every partition, so each day's own
        # figures go on an observation of its partition. Each event costs a write to the event log, so in
        # long ranges only days worth a look get one (the ledger and the checks cover every day).
        for result in results:
            if len(results) > OBSERVE_EVERY_DAY_UP_TO and result.status in ("complete", "unchanged") and not [
                g for g in result.gaps if g.cls != "out_of_range"
            ]:
                continue
            context.log_event(
                dg.AssetObservation(
                    asset_key=key,
                    partition=str(partition_key(result.day, result.symbol)),
                    metadata=day_metadata(result),
                )
            )

    failed = [r for r in results if r.failed]
    if failed:
        causes = "; ".join(f"{partition_key(r.day, r.symbol)}: {r.error}" for r in failed[:10])
        raise dg.Failure(
            description=f"{name}: {len(failed)} of {len(results)} day(s) failed and were not stored: {causes}",
            metadata={"failed_partitions": [str(partition_key(r.day, r.symbol)) for r in failed]},
        )

    meta = day_metadata(results[0]) if len(results) == 1 else range_metadata(results, dict(loader.written))
    if kind != "klines":
        meta["ledger_dataset"] = KIND_DATASETS[kind]
    last = max(results, key=lambda r: (r.day, r.symbol))
    start = datetime.fromtimestamp(day_start_ms(last.day) / 1000, tz=UTC)
    frame = runtime.repo.get_klines(last.symbol, interval, start, start + timedelta(days=1), kind=kind)
    meta[f"preview ({last.symbol} {last.day})"] = preview(frame)
    return dg.MaterializeResult(metadata=meta)
