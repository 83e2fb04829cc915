"""Per-partition checks of a kline asset, one op per asset that evaluates every selected check at once.

Why one op: a symbol-year of 1m bars is read from the store once, not once per check. Why
`AssetCheckEvaluation(partition=...)` instead of returning `AssetCheckResult`: in a range run Dagster
records an `AssetCheckResult` without a partition; an evaluation carrying its partition lands on that
partition's planned check row, so the UI shows each day's own result in single and range runs alike.
The gap verdicts also go to `partition_ledger.check_status`, which `marketdata gaps` reads.
"""

import warnings
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import numpy as np
import pandas as pd

from marketdata_assets.binance.intervals import DAY_MS, InvalidInputError, day_start_ms
from marketdata_assets.defs.constants import GAP_CHECK, kline_asset_key
from marketdata_assets.defs.partitions import days_by_symbol, partition_key
from marketdata_assets.defs.resources import MarketDataResource
from marketdata_assets.ingest.klines import DATASET
from marketdata_assets.storage.ledger import record_check_status
from marketdata_assets.validation import kline_checks as ev

ROWS_CHECK = "rows"
# The three row-level checks of DESIGN.md (schema, duplicates, OHLC invariants) are parts of one Dagster
# check: each part still gets its own verdict, named in the result's description and metadata, but a
# symbol-year writes 365 check results for them instead of 1,095 (each is an event-log write and a
# planned-row update; in a year's backfill those writes were most of the run).
ROW_PARTS = {
    "schema": "pandera schema: types, UTC times, the interval grid, close_time",
    "duplicates": "no open time stored twice",
    "ohlc": "low <= open, close <= high; prices > 0; volumes >= 0; taker buy <= volume",
}
CHECK_DESCRIPTIONS = {
    ROWS_CHECK: "Every stored row is valid, in three parts, each with its own verdict; a failure names its "
                "part. " + "; ".join(f"{part}: {text}" for part, text in ROW_PARTS.items()) + ".",
    GAP_CHECK: "Missing bars, classified: fillable fails (the repair sensor re-runs the partition), "
               "exchange gap passes with a warning, out of range (before listing, after delisting, "
               "in the future) is not a gap.",
    "continuity": "The first bar follows the previous day's last bar (open within 5% of its close).",
    "agrees_with_1m": "Each bar equals the aggregate of its 1m bars where those are all stored.",
}
WARN_ONLY = {"continuity"}


def check_names(interval: str) -> list[str]:
    return [name for name in CHECK_DESCRIPTIONS if name != "agrees_with_1m" or interval != "1m"]


def _utc(day: date) -> datetime:
    return datetime.fromtimestamp(day_start_ms(day) / 1000, tz=UTC)


def build_kline_checks(interval: str, partitions_def: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    key = kline_asset_key(interval)
    with warnings.catch_warnings():
        # partitioned check specs are "preview" in 1.13; they are what attributes results to partitions
        warnings.simplefilter("ignore", dg.PreviewWarning)
        specs = [
            dg.AssetCheckSpec(name, asset=key, description=CHECK_DESCRIPTIONS[name], partitions_def=partitions_def)
            for name in check_names(interval)
        ]

    @dg.multi_asset_check(specs=specs, can_subset=True, name=f"klines_{interval}_checks")
    def _checks(context: dg.AssetCheckExecutionContext, marketdata: MarketDataResource) -> Iterator:
        selected = {k.name for k in context.selected_asset_check_keys}
        yield from evaluate_partitions(context, marketdata, interval, context.partition_keys, selected)

    return _checks


def evaluate_partitions(
    context: dg.AssetCheckExecutionContext,
    marketdata: MarketDataResource,
    interval: str,
    keys: Sequence[str],
    selected: set[str],
) -> Iterator[dg.AssetCheckEvaluation]:
    try:
        grouped = days_by_symbol(keys)
    except InvalidInputError as exc:
        raise dg.Failure(description=f"klines_{interval} checks: {exc}") from None
    runtime = marketdata.runtime()
    repo = runtime.repo
    asset_key = kline_asset_key(interval)
    failed_partitions = 0
    for symbol, days in grouped.items():
        verdicts = check_symbol_days(repo, symbol, interval, days, selected)
        statuses: dict[date, str] = {}
        reset: set[date] = set()
        for day in days:
            pk = str(partition_key(day, symbol))
            worst = ev.PASSED
            for name in (n for n in check_names(interval) if n in selected):
                verdict = verdicts[name][day]
                severity = dg.AssetCheckSeverity.WARN if name in WARN_ONLY else dg.AssetCheckSeverity.ERROR
                meta = {"status": str(verdict.status), **verdict.metadata}
                yield dg.AssetCheckEvaluation(
                    asset_key=asset_key,
                    check_name=name,
                    passed=verdict.passed,
                    metadata=meta,
                    severity=severity,
                    description=f"{pk}: {verdict.description}",
                    partition=pk,
                )
                if verdict.status == ev.FAILED and severity == dg.AssetCheckSeverity.ERROR:
                    worst = ev.FAILED
                elif verdict.status != ev.PASSED and worst == ev.PASSED:
                    worst = ev.WARNING
                if name == GAP_CHECK and verdict.passed:
                    reset.add(day)
            statuses[day] = worst
            failed_partitions += worst == ev.FAILED
        record_check_status(runtime.engine, DATASET, symbol, interval, statuses, reset)
    context.log.info(f"klines_{interval}: checked {len(keys)} partition(s), {failed_partitions} failed")


def check_symbol_days(
    repo, symbol: str, interval: str, days: Sequence[date], selected: set[str]
) -> dict[str, dict[date, ev.DayCheck]]:
    """Every selected check for each day of one symbol, from one read of the range (plus the day before)."""
    first, last = days[0], days[-1]
    frame = repo.get_klines(symbol, interval, _utc(first - timedelta(days=1)), _utc(last + timedelta(days=1)))
    times = ev.open_ms(frame)
    if times.size and not bool(np.all(times[1:] >= times[:-1])):
        order = np.argsort(times, kind="stable")
        frame, times = frame.iloc[order], times[order]
    span = [first + timedelta(days=i) for i in range(-1, (last - first).days + 1)]
    per_day = ev.split_by_day(frame, span)
    ledger = {row.day: row for row in repo.get_ledger(DATASET, symbol, interval, first, last)}
    minutes_by_day: dict[date, pd.DataFrame] = {}
    if "agrees_with_1m" in selected and interval != "1m":
        minutes = repo.get_klines(symbol, "1m", _utc(first), _utc(last + timedelta(days=1)))
        minutes_by_day = ev.split_by_day(minutes, list(days))
    out: dict[str, dict[date, ev.DayCheck]] = {name: {} for name in check_names(interval)}
    if ROWS_CHECK in selected:
        lo = int(np.searchsorted(times, day_start_ms(first), side="left"))
        contiguous = (last - first).days + 1 == len(days)
        day_frames = frame.iloc[lo:] if contiguous else pd.concat([per_day[d] for d in days])
        schema = ev.check_schema(days, day_frames, interval, f"{symbol} {interval}")
        duplicates = ev.check_duplicates_days(days, frame, times, per_day)
        ohlc = ev.check_ohlc_days(days, frame)
        out[ROWS_CHECK] = {
            day: ev.combine_parts(day, {"schema": schema[day], "duplicates": duplicates[day], "ohlc": ohlc[day]})
            for day in days
        }
    if GAP_CHECK in selected:
        bounds = np.searchsorted(times, [day_start_ms(d) + k * DAY_MS for d in days for k in (0, 1)], side="left")
        for i, day in enumerate(days):
            day_times = times[bounds[2 * i]:bounds[2 * i + 1]]
            out[GAP_CHECK][day] = ev.check_gaps_times(day, day_times, interval, ledger.get(day))
    if "continuity" in selected:
        out["continuity"] = ev.check_continuity_days(days, frame, times, interval)
    if "agrees_with_1m" in selected and interval != "1m":
        for day in days:
            out["agrees_with_1m"][day] = ev.check_agrees_with_1m(day, per_day[day], minutes_by_day[day], interval)
    return out
