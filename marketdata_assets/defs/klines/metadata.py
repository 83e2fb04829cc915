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

from marketdata_assets.ingest.klines import DayResult
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


def _timestamp(value: Any) -> dg.MetadataValue | None:
    return dg.MetadataValue.timestamp(value) if value is not None else None


def day_metadata(result: DayResult) -> dict[str, Any]:
    """Everything the UI shows for one partition: rows, source mix, checksum, open times, gaps by class."""
    meta: dict[str, Any] = {
        "status": str(result.status),
        "dagster/row_count": result.stored_rows,
        "expected_rows": result.expected_rows,
        "sources": dg.MetadataValue.json(dict(result.sources)),
        "archive_checksum": result.archive_checksum or "",
        "gap_bars": dg.MetadataValue.json(gap_bars_by_class([result])),
        "gaps": dg.MetadataValue.json([g.as_dict() for g in result.gaps][:MAX_GAPS_LISTED]),
    }
    for key, value in (("first_open_time", result.first_open_time), ("last_open_time", result.last_open_time)):
        stamp = _timestamp(value)
        if stamp is not None:
            meta[key] = stamp
    if result.notes:
        meta["notes"] = dg.MetadataValue.text("\n".join(result.notes))
    if result.error:
        meta["error"] = dg.MetadataValue.text(result.error)
    return meta


def range_metadata(results: Sequence[DayResult], written: dict[str, int]) -> dict[str, Any]:
    """The materialization's summary of a range run (each day also gets its own observation)."""
    sources: Counter[str] = Counter()
    for result in results:
        sources.update(result.sources)
    firsts = [r.first_open_time for r in results if r.first_open_time is not None]
    lasts = [r.last_open_time for r in results if r.last_open_time is not None]
    gaps = [
        {"day": r.day.isoformat(), "symbol": r.symbol, **g.as_dict()}
        for r in results for g in r.gaps if g.cls != OUT_OF_RANGE
    ]
    meta: dict[str, Any] = {
        "partitions": len(results),
        "days_by_status": dg.MetadataValue.json(dict(Counter(str(r.status) for r in results))),
        "dagster/row_count": sum(r.stored_rows for r in results),
        "expected_rows": sum(r.expected_rows for r in results),
        "sources": dg.MetadataValue.json(dict(sources)),
        "rows_written": dg.MetadataValue.json(dict(written)),
        "gap_bars": dg.MetadataValue.json(gap_bars_by_class(results)),
        "gaps": dg.MetadataValue.json(gaps[:MAX_GAPS_LISTED]),
    }
    if firsts:
        meta["first_open_time"] = dg.MetadataValue.timestamp(min(firsts))
    if lasts:
        meta["last_open_time"] = dg.MetadataValue.timestamp(max(lasts))
    return meta
