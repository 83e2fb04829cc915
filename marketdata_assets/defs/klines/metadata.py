"""Dagster metadata of kline partitions: one day's figures, a range summary, and a small markdown preview.

Why separate: the asset, the checks and the tests share these shapes, and a range run needs the per-day
form (as asset observations, one per partition) as well as the summary on the materialization.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import dagster as dg
import pandas as pd

from marketdata_assets.ingest.contract import DayResult
from marketdata_assets.validation.gaps import EXCHANGE_GAP, FILLABLE, OUT_OF_RANGE

PREVIEW_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "trades_count")
MAX_GAPS_LISTED = 50


def gap_bars_by_class(results: Sequence[DayResult]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for result in results:
        for gap in result.gaps:
            counts[gap.cls] += gap.bars
    return {cls: counts.get(cls, 0) for cls in (FILLABLE, EXCHANGE_GAP, OUT_OF_RANGE)}


def markdown_table(frame: pd.DataFrame, columns: Sequence[str] = PREVIEW_COLUMNS) -> str:
    """A plain markdown table (no tabulate dependency) of the given columns."""
    cols = [c for c in columns if c in frame.columns]
    if frame.empty or not cols:
        return "_no rows stored_"
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame[cols].iterrows():
        lines.append("| " + " | ".join(str(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def preview(frame: pd.DataFrame, head: int = 3, tail: int = 2) -> dg.MarkdownMetadataValue:
    if len(frame) > head + tail:
        frame = pd.concat([frame.head(head), frame.tail(tail)])
    return dg.MetadataValue.md(markdown_table(frame))


def _open_times(firsts: Sequence[Any], lasts: Sequence[Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if firsts:
        meta["first_open_time"] = dg.MetadataValue.timestamp(min(firsts))
    if lasts:
        meta["last_open_time"] = dg.MetadataValue.timestamp(max(lasts))
    return meta


def kline_details(result: DayResult) -> dict[str, Any]:
    """A day's own kline figures: gaps by class, the gaps, first and last open time."""
    return {
        "gap_bars": dg.MetadataValue.json(gap_bars_by_class([result])),
        "gaps": dg.MetadataValue.json([g.as_dict() for g in result.gaps][:MAX_GAPS_LISTED]),
        **_open_times([t for t in (result.first_time,) if t is not None],
                      [t for t in (result.last_time,) if t is not None]),
    }


def kline_range_details(results: Sequence[DayResult], written: dict[str, int]) -> dict[str, Any]:
    """A range run's kline figures: rows written, gaps by class, the gaps that matter, open time span."""
    gaps = [{"day": r.day.isoformat(), "symbol": r.symbol, **g.as_dict()}
            for r in results for g in r.gaps if g.cls != OUT_OF_RANGE]
    return {
        "rows_written": dg.MetadataValue.json(dict(written)),
        "gap_bars": dg.MetadataValue.json(gap_bars_by_class(results)),
        "gaps": dg.MetadataValue.json(gaps[:MAX_GAPS_LISTED]),
        **_open_times([r.first_time for r in results if r.first_time is not None],
                      [r.last_time for r in results if r.last_time is not None]),
    }
