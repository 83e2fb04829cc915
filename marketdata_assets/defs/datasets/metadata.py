"""The metadata every daily dataset shows: one day's figures, and the summary of a range run.

Shared so that every dataset's partition reads the same names in the UI (status, `dagster/row_count`,
expected rows, source mix, archive checksum, corrections, notes, error); a spec adds only the figures that
are its own (`details`: first/last agg-trade id, missing funding events, bands, open times...).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import dagster as dg

from marketdata_assets.ingest.contract import DayResult

MAX_LISTED = 50
#: a dataset's own figures of one day (or of a range: the results of the run)
Details = Callable[[DayResult], dict[str, Any]]
RangeDetails = Callable[[Sequence[DayResult]], dict[str, Any]]


def summed_sources(per_day: Iterable[Mapping[str, int]]) -> dg.JsonMetadataValue:
    """Rows per source (archive, REST) over a range run's days, for its summary."""
    total: Counter[str] = Counter()
    for sources in per_day:
        total.update(sources)
    return dg.MetadataValue.json(dict(total))


def day_metadata(result: DayResult, details: Details | None = None) -> dict[str, Any]:
    """Everything the UI shows for one partition."""
    meta: dict[str, Any] = {
        "status": str(result.status),
        "dagster/row_count": result.stored_rows,
        "expected_rows": result.expected_rows,
        "sources": dg.MetadataValue.json(dict(result.sources)),
        "archive_checksum": result.archive_checksum or "",
        "corrections": dg.MetadataValue.json(result.corrections),
    }
    if details is not None:
        meta.update(details(result))
    if result.notes:
        meta["notes"] = dg.MetadataValue.text("\n".join(result.notes))
    if result.error:
        meta["error"] = dg.MetadataValue.text(result.error)
    return meta


def range_metadata(results: Sequence[DayResult], details: RangeDetails | None = None) -> dict[str, Any]:
    """The materialization's summary of a range run (each day also gets its own observation)."""
    meta: dict[str, Any] = {
        "partitions": len(results),
        "days_by_status": dg.MetadataValue.json(dict(Counter(str(r.status) for r in results))),
        "dagster/row_count": sum(r.stored_rows for r in results),
        "expected_rows": sum(r.expected_rows for r in results),
        "sources": summed_sources(r.sources for r in results),
        "corrections": dg.MetadataValue.json([c for r in results for c in r.corrections][:MAX_LISTED]),
    }
    if details is not None:
        meta.update(details(results))
    return meta


def with_details(details: Details) -> Callable[[DayResult], dict[str, Any]]:
    """A spec's `day_metadata`: the shared figures plus the dataset's own."""
    return lambda result: day_metadata(result, details)


def with_range_details(details: RangeDetails | None = None) -> Callable[[list[DayResult], Any], dict[str, Any]]:
    """A spec's `summary`: the shared range figures plus the dataset's own."""
    return lambda results, _loader: range_metadata(results, details)
