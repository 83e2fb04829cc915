"""`metrics` and `book_depth`: the archive's daily statistics per UTC day and symbol, with a `gaps` check.

One factory for both (`StatsLoader` in ingest/market_stats.py does the work): rows and the day's ledger
row in one transaction; corrections of the file (rows sorted, exact duplicates dropped) are reported in
the run's metadata (`corrections`), a changed layout or a row for another symbol fails the run naming
the file. Expected rows per day: metrics 288 (every 5 min), book depth 2880 snapshots per band.
"""

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg

from marketdata_assets.defs.datasets.common import evaluations, run_partitions
from marketdata_assets.defs.datasets.daily_asset import build_daily_dataset_asset
from marketdata_assets.defs.resources import MarketDataResource
from marketdata_assets.ingest.contract import DayResult
from marketdata_assets.ingest.market_stats import StatsDataset, StatsLoader, check_day, window
from marketdata_assets.storage.ledger import record_check_status
from marketdata_assets.validation import kline_checks as ev

DAYS_PER_RUN = 31
DESCRIPTIONS = {
    "metrics": "Binance USD-M Futures open interest and long/short ratios every 5 minutes (the archive's daily "
               "`metrics` files; rows sorted and exact duplicates dropped, both reported). Rows in "
               "`open_interest_metrics`, per-day figures in `partition_ledger`. Expected: 288 rows a day.",
    "book_depth": "Binance USD-M Futures order book depth per band (+-1..5 %) about every 30 s (the archive's "
                  "daily `bookDepth` files). Rows in `book_depth`, per-day figures in `partition_ledger`. "
                  "Expected: 2880 snapshots a day per band.",
}
GAP_DESCRIPTION = ("Stored rows against the day's load: rows lost since, or stretches without rows the file had, "
                   "fail (the repair re-runs the partition); stretches the archive file itself lacks only warn.")


def stats_asset_key(dataset: StatsDataset) -> dg.AssetKey:
    return dg.AssetKey(dataset.name)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def day_metadata(result: DayResult) -> dict:
    meta = {
        "status": str(result.status),
        "dagster/row_count": result.stored_rows,
        "expected_rows": result.expected_rows,
        "stamps": result.details.get("stamps", 0),
        "archive_checksum": result.archive_checksum or "",
        "archive_gaps": dg.MetadataValue.json([[_iso(g.start_ms), _iso(g.end_ms)] for g in result.gaps[:50]]),
        "corrections": dg.MetadataValue.json(result.corrections),
    }
    if result.details.get("bands"):
        meta["bands"] = result.details["bands"]
    if result.notes:
        meta["notes"] = dg.MetadataValue.text("\n".join(result.notes))
    if result.error:
        meta["error"] = dg.MetadataValue.text(result.error)
    return meta


def summary(results: list[DayResult]) -> dict:
    return {
        "partitions": len(results),
        "dagster/row_count": sum(r.stored_rows for r in results),
        "expected_rows": sum(r.expected_rows for r in results),
        "corrections": dg.MetadataValue.json([c for r in results for c in r.corrections][:50]),
    }


def build_stats_asset(dataset: StatsDataset, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    return build_daily_dataset_asset(
        stats_asset_key(dataset),
        partitions_def=partitions_def,
        days_per_run=DAYS_PER_RUN,
        group_name="market_stats",
        metadata={"table": dataset.table.name, "archive_type": dataset.data_type},
        description=DESCRIPTIONS[dataset.name],
        loader=lambda runtime: StatsLoader(runtime.engine, runtime.rest, runtime.archive, dataset=dataset).load,
        day_metadata=day_metadata,
        summary=summary,
        failure_cause=lambda r: f"{r.error}" if r.failed else None,
        failed_partitions_metadata=True,
    )


def build_stats_checks(dataset: StatsDataset, partitions_def: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    key = stats_asset_key(dataset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        specs = [dg.AssetCheckSpec("gaps", asset=key, partitions_def=partitions_def, description=GAP_DESCRIPTION)]

    @dg.multi_asset_check(specs=specs, can_subset=True, name=f"{dataset.name}_checks")
    def _checks(context: dg.AssetCheckExecutionContext, marketdata: MarketDataResource) -> Iterator:
        grouped = run_partitions(dataset.name, context.partition_keys)
        runtime = marketdata.runtime()
        loader = StatsLoader(runtime.engine, runtime.rest, runtime.archive, dataset=dataset)
        now = loader.now_ms()
        for symbol, days in grouped.items():
            info = loader.symbol_info(symbol)
            ledger = {r.day: r for r in runtime.repo.get_ledger(dataset.name, symbol, "", days[0], days[-1])}
            verdicts: dict = {"gaps": {}}
            for day in days:
                status, description, meta = check_day(dataset, loader.store, symbol, day, ledger.get(day),
                                                       *window(dataset, info, day, now))
                verdicts["gaps"][day] = ev.DayCheck(day, status, description, meta)
            evals, statuses, passed_days = evaluations(key, symbol, days, verdicts)
            yield from evals
            record_check_status(runtime.engine, dataset.name, symbol, "", statuses, passed_days)

    return _checks
