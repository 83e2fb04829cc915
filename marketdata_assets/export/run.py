"""`export_table`: stored rows of one table -> a Parquet or CSV dataset partitioned by symbol and date.

Reads each symbol in windows of days (sized by the table's rows per day, so a trade-sized day never
holds a month in memory), splits each window on UTC day boundaries and writes one file per symbol-day.
Nothing here imports Dagster: the CLI and any script call this directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from sqlalchemy.engine import Engine

from marketdata_assets.binance.intervals import (
    DAY_MS,
    InvalidInputError,
    day_start_ms,
    ms_to_datetime,
    validate_interval,
    validate_symbol,
)
from marketdata_assets.export.read import read_table
from marketdata_assets.export.tables import table_spec
from marketdata_assets.export.writer import FORMATS, partition_dir, write_partition

ROWS_PER_WINDOW = 50_000  # about a month of 1m klines, a fraction of a trade day


@dataclass
class ExportResult:
    """What an export wrote: rows and files per symbol, the dataset root, and the time it took."""

    table: str
    fmt: str
    root: Path
    rows: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def export_table(engine: Engine, table: str, symbols: Sequence[str], start: date, end: date, out: Path | str, *,
                 fmt: str = "parquet", interval: str | None = None,
                 progress: Callable[[str, date, int], None] | None = None) -> ExportResult:
    """Export rows with time in [start 00:00, end + 1 day) UTC; `interval` is required for klines only.

    Bad input (unknown table or format, bad symbol, end before start, an interval for a table without
    intervals) raises InvalidInputError naming it, before anything is read or written.
    """
    spec = table_spec(table)
    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    wanted = [validate_symbol(s) for s in symbols]
    if not wanted:
        raise InvalidInputError("no symbols given")
    if end < start:
        raise InvalidInputError(f"end {end} is before start {start}")
    if spec.has_interval:
        validate_interval(interval or "")
    elif interval is not None:
        raise InvalidInputError(f"--interval {interval!r}: table {table!r} has no interval")
    root = Path(out) / spec.name
    result = ExportResult(spec.name, fmt, root)
    began = time.perf_counter()
    window_days = max(1, ROWS_PER_WINDOW // max(1, spec.rows_per_day_hint))
    windows = [(symbol, first, min(end, first + timedelta(days=window_days - 1)))
               for symbol in wanted for first in _starts(start, end, window_days)]
    decimals = "decimal" if fmt == "parquet" else "text"
    part_interval = interval if spec.has_interval else None

    def read(window: tuple[str, date, date]) -> pa.Table:
        symbol, first, last = window
        lo, hi = day_start_ms(first), day_start_ms(last) + DAY_MS
        with engine.connect() as conn:
            return read_table(conn, spec, symbol, ms_to_datetime(lo), ms_to_datetime(hi), interval=interval,
                              decimals=decimals)

    result.rows = dict.fromkeys(wanted, 0)
    # the next window is read while this one is written, and files are written two at a time: the database,
    # the CSV parser and the Parquet encoder all release the GIL
    with ThreadPoolExecutor(max_workers=1) as reader, ThreadPoolExecutor(max_workers=2) as writers:
        pending = reader.submit(read, windows[0])
        for index, (symbol, _, _) in enumerate(windows):
            rows = pending.result()
            if index + 1 < len(windows):
                pending = reader.submit(read, windows[index + 1])
            days = split_days(rows, spec.time_column) if rows.num_rows else []
            paths = writers.map(
                lambda item, symbol=symbol: write_partition(
                    item[1], partition_dir(Path(out), spec.name, symbol, item[0], part_interval), fmt),
                days)
            for (day, part), path in zip(days, paths, strict=True):
                result.files.append(path)
                result.rows[symbol] += part.num_rows
                if progress is not None:
                    progress(symbol, day, part.num_rows)
    result.seconds = time.perf_counter() - began
    return result


def _starts(start: date, end: date, step_days: int) -> list[date]:
    count = (end - start).days // step_days + 1
    return [start + timedelta(days=i * step_days) for i in range(count)]


def split_days(rows: pa.Table, time_column: str) -> list[tuple[date, pa.Table]]:
    """Slices of `rows` (sorted by `time_column`) per UTC day, without copying."""
    ms = rows.column(time_column).cast(pa.int64()).to_numpy()
    days = ms // DAY_MS
    cuts = np.flatnonzero(np.diff(days)) + 1
    bounds = [0, *cuts.tolist(), len(ms)]
    epoch = date(1970, 1, 1)
    return [(epoch + timedelta(days=int(days[a])), rows.slice(a, b - a))
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
