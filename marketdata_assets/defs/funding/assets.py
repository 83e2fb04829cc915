"""`funding_rates`: funding events per UTC day and symbol (archive months first, REST for the rest).

Every run, of one partition or a range, calls `FundingLoader.load` (ingest/funding.py), which stores the
events and one ledger row per day (dataset `funding_rates`, interval ""). The `gaps` check reads the
store through `FundingStore.check_day`: a symbol's interval can be 8, 4 or 1 h and can change (passes);
a missing event fails, and the ledger's check status says so for `marketdata gaps`.
"""

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg

from marketdata_assets.binance.intervals import DAY_MS, InvalidInputError, day_start_ms
from marketdata_assets.defs.datasets.common import evaluations, run_partitions
from marketdata_assets.defs.datasets.daily_asset import build_daily_dataset_asset, summed_sources
from marketdata_assets.defs.partitions import partition_key
from marketdata_assets.defs.resources import MarketDataResource
from marketdata_assets.ingest.contract import DayResult
from marketdata_assets.ingest.funding import DATASET, FundingLoader
from marketdata_assets.storage.ledger import record_check_status
from marketdata_assets.validation import kline_checks as ev

FUNDING_KEY = dg.AssetKey("funding_rates")
GAP_DESCRIPTION = ("Missing funding events: the gap between two events must be the interval of one of them "
                   "(8, 4 or 1 h; a change of interval passes); a longer gap, or a closed day ending more "
                   "than one interval after its last event, fails.")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def day_metadata(result: DayResult) -> dict:
    meta = {
        "status": str(result.status),
        "dagster/row_count": result.stored_rows,
        "sources": dg.MetadataValue.json(dict(result.sources)),
        "archive_checksum": result.archive_checksum or "",
        "missing_events": dg.MetadataValue.json([_iso(g.start_ms) for g in result.gaps]),
    }
    if result.notes:
        meta["notes"] = dg.MetadataValue.text("\n".join(result.notes))
    return meta


def summary(results: list[DayResult]) -> dict:
    return {
        "partitions": len(results),
        "dagster/row_count": sum(r.stored_rows for r in results),
        "sources": summed_sources(r.sources for r in results),
        "missing_events": dg.MetadataValue.json(
            {str(partition_key(r.day, r.symbol)): [_iso(g.start_ms) for g in r.gaps] for r in results if r.gaps}),
    }


def build_funding_asset(partitions_def: dg.PartitionsDefinition, days_per_run: int) -> dg.AssetsDefinition:
    return build_daily_dataset_asset(
        FUNDING_KEY,
        partitions_def=partitions_def,
        days_per_run=days_per_run,
        group_name="funding",
        metadata={"table": "funding_rates"},
        description="Binance USD-M Futures funding events per UTC day and symbol: the archive's monthly "
                    "fundingRate files (with each event's interval) and REST fundingRate (mark price, "
                    "unarchived months). Rows in `funding_rates`, per-day figures in `partition_ledger`.",
        loader=lambda runtime: FundingLoader(runtime.engine, runtime.rest, runtime.archive).load,
        day_metadata=day_metadata,
        summary=summary,
        errors=(InvalidInputError,),
        describe_error=lambda exc: f"{type(exc).__name__}: {exc}",
        failure_cause=lambda r: r.error if r.failed else None,
    )


def build_funding_checks(partitions_def: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        specs = [dg.AssetCheckSpec("gaps", asset=FUNDING_KEY, description=GAP_DESCRIPTION,
                                   partitions_def=partitions_def)]

    @dg.multi_asset_check(specs=specs, can_subset=True, name="funding_rates_checks")
    def _checks(context: dg.AssetCheckExecutionContext, marketdata: MarketDataResource) -> Iterator:
        grouped = run_partitions("funding_rates", context.partition_keys)
        runtime = marketdata.runtime()
        loader = FundingLoader(runtime.engine, runtime.rest, runtime.archive)
        now = loader.now_ms()
        for symbol, days in grouped.items():
            ledger = {r.day: r for r in runtime.repo.get_ledger(DATASET, symbol, "", days[0], days[-1])}
            verdicts = {"gaps": {}}
            for day in days:
                verdicts["gaps"][day] = check_day(loader, symbol, day, now, ledger.get(day))
            evals, statuses, passed = evaluations(FUNDING_KEY, symbol, days, verdicts)
            yield from evals
            record_check_status(runtime.engine, DATASET, symbol, "", statuses, passed)

    return _checks


def check_day(loader: FundingLoader, symbol: str, day, now_ms: int, ledger) -> ev.DayCheck:
    if ledger is None:
        return ev.DayCheck(day, ev.FAILED, "never loaded: no ledger entry for this day", {"never_loaded": True})
    missing = loader.store.check_day(symbol, day, now_ms)
    events = loader.store.events(symbol, *_day_range(day))
    meta = {"events": len(events), "intervals_h": sorted({h for _, h in events}),
            "missing_events": [_iso(t) for t in missing]}
    if missing:
        return ev.DayCheck(day, ev.FAILED, f"{len(missing)} funding event(s) missing: the repair re-runs the "
                                           "partition", meta)
    return ev.DayCheck(day, ev.PASSED, f"{len(events)} event(s), none missing", meta)


def _day_range(day) -> tuple[int, int]:
    start = day_start_ms(day)
    return start, start + DAY_MS
