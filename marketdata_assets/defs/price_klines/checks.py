"""Per-partition checks of the mark/index/premium kline assets: the kline checks, adapted to the kind.

schema, gaps, duplicates and OHLC are the kline checks (defs/klines/evaluate.py) over the kind's table and
ledger dataset. The premium index is signed, so its schema allows prices <= 0 and its OHLC check keeps only
the ordering rules; its continuity check is left out (a relative jump of a value near zero means nothing).
Evaluations carry their partition, so range runs are attributed per day, as for the kline checks.
"""


import warnings
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd

from marketdata_assets.defs.datasets.common import evaluations, run_partitions
from marketdata_assets.defs.price_klines.assets import price_kline_asset_key
from marketdata_assets.defs.resources import MarketDataResource
from marketdata_assets.ingest.klines import KIND_DATASETS
from marketdata_assets.storage.ledger import record_check_status
from marketdata_assets.validation import kline_checks as ev
from marketdata_assets.validation.schemas import KlineValidationError, validate_klines

CHECK_DESCRIPTIONS = {
    "schema": "pandera kline schema of the stored rows (premium index: prices may be <= 0).",
    "gaps": "Missing bars, classified: fillable fails, exchange gap warns, out of range is not a gap.",
    "duplicates": "No open time stored twice.",
    "ohlc": "low <= open, close <= high (and prices > 0 except for the premium index).",
    "continuity": "The first bar follows the previous day's last bar (open within 5% of its close).",
}
WARN_ONLY = {"continuity"}


def check_names(kind: str) -> list[str]:
    return [n for n in CHECK_DESCRIPTIONS if not (kind == "premiumIndexKlines" and n == "continuity")]


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def build_price_kline_checks(kind: str, interval: str,
                             partitions_def: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    key = price_kline_asset_key(kind, interval)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        specs = [dg.AssetCheckSpec(n, asset=key, description=CHECK_DESCRIPTIONS[n], partitions_def=partitions_def)
                 for n in check_names(kind)]

    @dg.multi_asset_check(specs=specs, can_subset=True, name=f"{key.path[-1]}_checks")
    def _checks(context: dg.AssetCheckExecutionContext, marketdata: MarketDataResource) -> Iterator:
        selected = {k.name for k in context.selected_asset_check_keys}
        grouped = run_partitions(key.path[-1], context.partition_keys)
        runtime = marketdata.runtime()
        for symbol, days in grouped.items():
            verdicts = check_days(runtime.repo, kind, symbol, interval, days, selected)
            evals, statuses, passed_gaps = evaluations(key, symbol, days, verdicts, WARN_ONLY)
            yield from evals
            record_check_status(runtime.engine, KIND_DATASETS[kind], symbol, interval, statuses, passed_gaps)

    return _checks


def _schema(kind: str, days: Sequence[date], frame: pd.DataFrame, interval: str, label: str) -> dict[date, ev.DayCheck]:
    if kind != "premiumIndexKlines":
        return ev.check_schema(days, frame, interval, label)
    out: dict[date, ev.DayCheck] = {}
    for day, rows in ev.split_by_day(frame, list(days)).items():
        try:
            validate_klines(rows.reset_index(drop=True), interval, f"{label} {day}", signed_prices=True)
            out[day] = ev.DayCheck(day, ev.PASSED, "schema valid")
        except KlineValidationError as exc:
            out[day] = ev.DayCheck(day, ev.FAILED, str(exc).splitlines()[0], {"failures": str(exc)[:2000]})
    return out


def _ohlc(kind: str, day: date, rows: pd.DataFrame) -> ev.DayCheck:
    if kind != "premiumIndexKlines" or rows.empty:
        return ev.check_ohlc(day, rows)
    bad = (rows["low"] > rows[["open", "close"]].min(axis=1)) | (rows["high"] < rows[["open", "close"]].max(axis=1))
    if bad.any():
        return ev.DayCheck(day, ev.FAILED, f"{int(bad.sum())} bar(s) break low <= open, close <= high",
                           {"violations": rows.loc[bad, "open_time"].astype(str).head(20).tolist()})
    return ev.DayCheck(day, ev.PASSED, "OHLC ordering holds", {"violations": 0})


def check_days(repo, kind: str, symbol: str, interval: str, days: Sequence[date],
               selected: set[str]) -> dict[str, dict[date, ev.DayCheck]]:
    """Every selected check for each day of one symbol, from one read of the range (plus the day before)."""
    first, last = days[0], days[-1]
    frame = repo.get_klines(symbol, interval, _utc(first - timedelta(days=1)), _utc(last + timedelta(days=1)),
                            kind=kind)
    span = [first + timedelta(days=i) for i in range(-1, (last - first).days + 1)]
    per_day = ev.split_by_day(frame, span)
    ledger = {row.day: row for row in repo.get_ledger(KIND_DATASETS[kind], symbol, interval, first, last)}
    names = [n for n in check_names(kind) if n in selected]
    out: dict[str, dict[date, ev.DayCheck]] = {n: {} for n in names}
    if "schema" in out:
        out["schema"] = _schema(kind, days, pd.concat([per_day[d] for d in days]), interval, f"{symbol} {kind}")
    for day in days:
        rows = per_day[day]
        if "gaps" in out:
            out["gaps"][day] = ev.check_gaps(day, rows, interval, ledger.get(day))
        if "duplicates" in out:
            out["duplicates"][day] = ev.check_duplicates(day, rows)
        if "ohlc" in out:
            out["ohlc"][day] = _ohlc(kind, day, rows)
        if "continuity" in out:
            out["continuity"][day] = ev.check_continuity(day, rows, per_day[day - timedelta(days=1)], interval)
    return out
