"""`agg_trades`: every aggregate trade of a UTC day and symbol (archive daily file, REST by fromId).

Each run calls `AggTradeLoader.load` (ingest/agg_trades.py): rows and the day's ledger row in one
transaction. Corrections of the archive file (rows sorted, exact duplicates dropped) are reported in the
run's metadata (`corrections`), never silently applied. Days per run are few (a BTCUSDT day is ~1.5
million rows, ~8 s): the backfill policy runs up to `AGG_DAYS_PER_RUN` days per run.
The `gaps` check is id continuity against the ledger (`ingest.agg_trades.check_day`).
"""

import warnings
from collections.abc import Iterator

import dagster as dg

from marketdata_assets.defs.datasets.common import evaluations, run_partitions
from marketdata_assets.defs.datasets.daily_asset import build_daily_dataset_asset, summed_sources
from marketdata_assets.defs.resources import MarketDataResource
from marketdata_assets.ingest.agg_trades import DATASET, AggTradeLoader, check_day
from marketdata_assets.ingest.contract import DayResult
from marketdata_assets.storage.agg_trades_store import AggTradeStore
from marketdata_assets.storage.ledger import record_check_status
from marketdata_assets.validation import kline_checks as ev

AGG_TRADES_KEY = dg.AssetKey("agg_trades")
AGG_DAYS_PER_RUN = 31


def day_metadata(result: DayResult) -> dict:
    meta = {
        "status": str(result.status),
        "dagster/row_count": result.stored_rows,
        "expected_rows": result.expected_rows,
        "first_id": result.details.get("first_id", -1),
        "last_id": result.details.get("last_id", -1),
        "sources": dg.MetadataValue.json(dict(result.sources)),
        "archive_checksum": result.archive_checksum or "",
        "id_gaps": dg.MetadataValue.json([[g.start_id, g.end_id] for g in result.gaps[:50]]),
        "corrections": dg.MetadataValue.json(result.corrections),
    }
    if result.notes:
        meta["notes"] = dg.MetadataValue.text("\n".join(result.notes))
    if result.error:
        meta["error"] = dg.MetadataValue.text(result.error)
    return meta


def summary(results: list[DayResult]) -> dict:
    return {
        "partitions": len(results),
        "dagster/row_count": sum(r.stored_rows for r in results),
        "sources": summed_sources(r.sources for r in results),
        "corrections": dg.MetadataValue.json([c for r in results for c in r.corrections][:50]),
    }


def build_agg_trades_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    return build_daily_dataset_asset(
        AGG_TRADES_KEY,
        partitions_def=partitions_def,
        days_per_run=AGG_DAYS_PER_RUN,
        group_name="trades",
        metadata={"table": "agg_trades"},
        description="Binance USD-M Futures aggregate trades per UTC day and symbol: the archive's daily "
                    "aggTrades file (sorted by id, exact duplicates dropped and reported), REST by fromId "
                    "for the rest and every id hole. Rows in `agg_trades` (shared with the stream), per-day "
                    "figures in `partition_ledger`.",
        loader=lambda runtime: AggTradeLoader(runtime.engine, runtime.rest, runtime.archive).load,
        day_metadata=day_metadata,
        summary=summary,
        failure_cause=lambda r: f"{r.error}" if r.failed else None,
    )


def build_agg_trades_checks(partitions_def: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        specs = [dg.AssetCheckSpec(
            "gaps", asset=AGG_TRADES_KEY, partitions_def=partitions_def,
            description="Id continuity: the day's trades are every id from its first to its last (as REST "
                        "bounded them at load); a missing id fails and the partition is re-run.")]

    @dg.multi_asset_check(specs=specs, can_subset=True, name="agg_trades_checks")
    def _checks(context: dg.AssetCheckExecutionContext, marketdata: MarketDataResource) -> Iterator:
        grouped = run_partitions("agg_trades", context.partition_keys)
        runtime = marketdata.runtime()
        store = AggTradeStore(runtime.engine)
        for symbol, days in grouped.items():
            ledger = {r.day: r for r in runtime.repo.get_ledger(DATASET, symbol, "", days[0], days[-1])}
            verdicts: dict = {"gaps": {}}
            for day in days:
                passed, description, meta = check_day(store, symbol, day, ledger.get(day))
                verdicts["gaps"][day] = ev.DayCheck(day, ev.PASSED if passed else ev.FAILED, description, meta)
            evals, statuses, passed_days = evaluations(AGG_TRADES_KEY, symbol, days, verdicts)
            yield from evals
            record_check_status(runtime.engine, DATASET, symbol, "", statuses, passed_days)

    return _checks
