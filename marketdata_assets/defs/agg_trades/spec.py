"""`agg_trades`: every aggregate trade of a UTC day and symbol (archive daily file, REST by fromId).

Each run calls `AggTradeLoader.load` (ingest/agg_trades.py): rows and the day's ledger row in one
transaction. Corrections of the archive file (rows sorted, exact duplicates dropped) are reported in the
run's metadata (`corrections`), never silently applied. Days per run are few (a BTCUSDT day is ~1.5
million rows, ~8 s): the backfill policy runs up to `AGG_DAYS_PER_RUN` days per run.
The `gaps` check is id continuity against the ledger (`ingest.agg_trades.check_day`).
"""

from datetime import date

import dagster as dg

from marketdata_assets.defs.constants import EXCHANGE_INFO_KEY, GAP_CHECK
from marketdata_assets.defs.datasets.metadata import with_details, with_range_details
from marketdata_assets.defs.datasets.spec import CheckFamily, DailyDatasetSpec
from marketdata_assets.ingest.agg_trades import DATASET, AggTradeLoader, check_day
from marketdata_assets.ingest.contract import DayResult
from marketdata_assets.storage.agg_trades_store import AggTradeStore
from marketdata_assets.validation import kline_checks as ev

AGG_DAYS_PER_RUN = 31
GAP_DESCRIPTION = ("Id continuity: the day's trades are every id from its first to its last (as REST bounded "
                   "them at load); a missing id fails and the partition is re-run.")


def _details(result: DayResult) -> dict:
    return {
        "first_id": result.details.get("first_id", -1),
        "last_id": result.details.get("last_id", -1),
        "id_gaps": dg.MetadataValue.json([[g.start_id, g.end_id] for g in result.gaps[:50]]),
    }


def check_days(runtime, symbol: str, days: list[date], selected: set[str]) -> dict:
    store = AggTradeStore(runtime.engine)
    ledger = {r.day: r for r in runtime.repo.get_ledger(DATASET, symbol, "", days[0], days[-1])}
    verdicts = {}
    for day in days:
        passed, description, meta = check_day(store, symbol, day, ledger.get(day))
        verdicts[day] = ev.DayCheck(day, ev.PASSED if passed else ev.FAILED, description, meta)
    return {GAP_CHECK: verdicts}


def agg_trades_spec() -> DailyDatasetSpec:
    return DailyDatasetSpec(
        name="agg_trades", ledger_dataset=DATASET, table="agg_trades", group="trades",
        description="Binance USD-M Futures aggregate trades per UTC day and symbol: the archive's daily "
                    "aggTrades file (sorted by id, exact duplicates dropped and reported), REST by fromId "
                    "for the rest and every id hole. Rows in `agg_trades` (shared with the stream), per-day "
                    "figures in `partition_ledger`.",
        loader=lambda runtime: AggTradeLoader(runtime.engine, runtime.rest, runtime.archive),
        checks=CheckFamily({GAP_CHECK: GAP_DESCRIPTION}, check_days),
        day_metadata=with_details(_details),
        summary=with_range_details(),
        days_per_run=AGG_DAYS_PER_RUN,
        repair_sensor="gap_repair_agg_trades",
        # the sidecar's trades go to the same table
        deps=(EXCHANGE_INFO_KEY, dg.AssetKey("stream_agg_trades")),
    )
