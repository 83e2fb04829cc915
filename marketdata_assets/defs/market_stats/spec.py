"""`metrics` and `book_depth`: the archive's daily statistics per UTC day and symbol, with a `gaps` check.

One factory for both (`StatsLoader` in ingest/market_stats.py does the work): rows and the day's ledger
row in one transaction; corrections of the file (rows sorted, exact duplicates dropped) are reported in
the run's metadata (`corrections`), a changed layout or a row for another symbol fails the run naming
the file. Expected rows per day: metrics 288 (every 5 min), book depth 2880 snapshots per band.
"""

from datetime import UTC, date, datetime

import dagster as dg

from marketdata_assets.defs.constants import GAP_CHECK
from marketdata_assets.defs.datasets.metadata import with_details, with_range_details
from marketdata_assets.defs.datasets.spec import CheckFamily, DailyDatasetSpec
from marketdata_assets.ingest.contract import DayResult
from marketdata_assets.ingest.market_stats import BOOK_DEPTH, METRICS, StatsDataset, StatsLoader, check_day, window
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


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _details(result: DayResult) -> dict:
    meta = {
        "stamps": result.details.get("stamps", 0),
        "archive_gaps": dg.MetadataValue.json([[_iso(g.start_ms), _iso(g.end_ms)] for g in result.gaps[:50]]),
    }
    if result.details.get("bands"):
        meta["bands"] = result.details["bands"]
    return meta


def _check_days(dataset: StatsDataset):
    def check_days(runtime, symbol: str, days: list[date], selected: set[str]) -> dict:
        loader = StatsLoader(runtime.engine, runtime.rest, runtime.archive, dataset=dataset)
        now = loader.now_ms()
        info = loader.symbol_info(symbol)
        ledger = {r.day: r for r in runtime.repo.get_ledger(dataset.name, symbol, "", days[0], days[-1])}
        verdicts = {}
        for day in days:
            status, description, meta = check_day(dataset, loader.store, symbol, day, ledger.get(day),
                                                   *window(dataset, info, day, now))
            verdicts[day] = ev.DayCheck(day, status, description, meta)
        return {GAP_CHECK: verdicts}
    return check_days


def stats_spec(dataset: StatsDataset) -> DailyDatasetSpec:
    return DailyDatasetSpec(
        name=dataset.name, ledger_dataset=dataset.name, table=dataset.table.name, group="market_stats",
        description=DESCRIPTIONS[dataset.name],
        loader=lambda runtime: StatsLoader(runtime.engine, runtime.rest, runtime.archive, dataset=dataset),
        checks=CheckFamily({GAP_CHECK: GAP_DESCRIPTION}, _check_days(dataset)),
        day_metadata=with_details(_details),
        summary=with_range_details(),
        days_per_run=DAYS_PER_RUN,
        metadata={"archive_type": dataset.data_type},
        repair_sensor=f"gap_repair_{dataset.name}",
    )


def stats_specs() -> list[DailyDatasetSpec]:
    return [stats_spec(dataset) for dataset in (METRICS, BOOK_DEPTH)]
