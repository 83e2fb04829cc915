"""What every non-kline dataset asset does the same way: validate the run's partitions, write check
statuses to the ledger, and turn per-day verdicts into partition-attributed check evaluations.

Why not reuse defs/klines directly: those helpers are bound to the `klines` ledger dataset and the
`klines_<interval>` keys; these take the dataset and the asset key as arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime

import dagster as dg

from marketdata_assets.binance.intervals import InvalidInputError
from marketdata_assets.defs.partitions import days_by_symbol, partition_key
from marketdata_assets.validation import kline_checks as ev


def run_partitions(asset_name: str, keys: Sequence[str]) -> dict[str, list[date]]:
    """Days per symbol of a run; a malformed key or a future day fails the run naming the partitions."""
    try:
        grouped = days_by_symbol(keys)
    except InvalidInputError as exc:
        raise dg.Failure(description=f"{asset_name}: {exc}") from None
    today = datetime.now(UTC).date()
    future = [str(partition_key(d, s)) for s, days in grouped.items() for d in days if d > today]
    if future:
        shown = ", ".join(future[:5]) + (f" and {len(future) - 5} more" if len(future) > 5 else "")
        raise dg.Failure(description=f"{asset_name} partition(s) {shown}: the day has not begun yet (future date)")
    return grouped


def evaluations(
    asset_key: dg.AssetKey,
    symbol: str,
    days: Sequence[date],
    verdicts: Mapping[str, Mapping[date, ev.DayCheck]],
    warn_only: Iterable[str] = (),
) -> tuple[list[dg.AssetCheckEvaluation], dict[date, str], set[date]]:
    """(evaluations, worst status per day, days whose `gaps` check passed) of one symbol's verdicts."""
    warn = set(warn_only)
    out: list[dg.AssetCheckEvaluation] = []
    statuses: dict[date, str] = {}
    passed_gaps: set[date] = set()
    for day in days:
        pk = str(partition_key(day, symbol))
        worst = ev.PASSED
        for name, per_day in verdicts.items():
            verdict = per_day[day]
            severity = dg.AssetCheckSeverity.WARN if name in warn else dg.AssetCheckSeverity.ERROR
            out.append(dg.AssetCheckEvaluation(
                asset_key=asset_key, check_name=name, passed=verdict.passed,
                metadata={"status": str(verdict.status), **verdict.metadata}, severity=severity,
                description=f"{pk}: {verdict.description}", partition=pk,
            ))
            if verdict.status == ev.FAILED and severity == dg.AssetCheckSeverity.ERROR:
                worst = ev.FAILED
            elif verdict.status != ev.PASSED and worst == ev.PASSED:
                worst = ev.WARNING
            if name == "gaps" and verdict.passed:
                passed_gaps.add(day)
        statuses[day] = worst
    return out, statuses, passed_gaps

