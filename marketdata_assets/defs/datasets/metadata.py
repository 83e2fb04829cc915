"""Metadata shapes shared by the daily datasets' specs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import dagster as dg


def summed_sources(per_day: Iterable[Mapping[str, int]]) -> dg.JsonMetadataValue:
    """Rows per source (archive, REST) over a range run's days, for its summary."""
    total: Counter[str] = Counter()
    for sources in per_day:
        total.update(sources)
    return dg.MetadataValue.json(dict(total))
