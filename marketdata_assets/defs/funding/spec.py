"""`funding_rates`: funding events per UTC day and symbol (archive months first, REST for the rest).

Every run, of one partition or a range, calls `FundingLoader.load` (ingest/funding.py), which stores the
events and one ledger row per day (dataset `funding_rates`, interval ""). The `gaps` check reads the
store through `FundingStore.check_day`: a symbol's interval can be 8, 4 or 1 h and can change (passes);
a missing event fails, and the ledger's check status says so for `marketdata gaps`.
"""

from datetime import UTC, date, datetime

import dagster as dg

from marketdata_assets.binance.intervals import DAY_MS, day_start_ms
from marketdata_assets.defs.constants import GAP_CHECK
from marketdata_assets.defs.datasets.metadata import with_details, with_range_details
from marketdata_assets.defs.datasets.spec import CheckFamily, DailyDatasetSpec
from marketdata_assets.defs.partitions import partition_key
from marketdata_assets.ingest.contract import DayResult
from marketdata_assets.ingest.funding import DATASET, FundingLoader
from marketdata_assets.validation import kline_checks as ev

GAP_DESCRIPTION = ("Missing funding events: the gap between two events must be the interval of one of them "
                   "(8, 4 or 1 h; a change of interval passes); a longer gap, or a closed day ending more "
                   "than one interval after its last event, fails.")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _details(result: DayResult) -> dict:
    return {"missing_events": dg.MetadataValue.json([_iso(g.start_ms) for g in result.gaps])}


def _range_details(results) -> dict:
    return {"missing_events": dg.MetadataValue.json(
        {str(partition_key(r.day, r.symbol)): [_iso(g.start_ms) for g in r.gaps] for r in results if r.gaps})}


def check_days(runtime, symbol: str, days: list[date], selected: set[str]) -> dict:
    loader = FundingLoader(runtime.engine, runtime.rest, runtime.archive)
    now = loader.now_ms()
    ledger = {r.day: r for r in runtime.repo.get_ledger(DATASET, symbol, "", days[0], days[-1])}
    return {GAP_CHECK: {day: check_day(loader, symbol, day, now, ledger.get(day)) for day in days}}


def funding_spec(days_per_run: int) -> DailyDatasetSpec:
    return DailyDatasetSpec(
        name="funding_rates", ledger_dataset=DATASET, table="funding_rates", group="funding",
        description="Binance USD-M Futures funding events per UTC day and symbol: the archive's monthly "
                    "fundingRate files (with each event's interval) and REST fundingRate (mark price, "
                    "unarchived months). Rows in `funding_rates`, per-day figures in `partition_ledger`.",
        loader=lambda runtime: FundingLoader(runtime.engine, runtime.rest, runtime.archive),
        checks=CheckFamily({GAP_CHECK: GAP_DESCRIPTION}, check_days),
        day_metadata=with_details(_details),
        summary=with_range_details(_range_details),
        days_per_run=days_per_run,
        repair_sensor="gap_repair_funding_rates",
    )


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
