"""Write one day of one symbol as a file of a hive-partitioned dataset (Parquet or CSV).

Layout: `<out>/<table>/[interval=<i>/]symbol=<S>/date=<YYYY-MM-DD>/part-0.<ext>`; the partition values
live in the directory names only (pandas/pyarrow and polars add them back as columns on read, and a
column both in the file and in the path would make the readers disagree). Parquet is zstd-compressed with
decimal128 prices; CSV has a header, prices as the exact stored text, times as ISO 8601 UTC. A file is
written under a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FORMATS = ("parquet", "csv")
PARQUET_COMPRESSION = "zstd"


def partition_dir(out: Path, table: str, symbol: str, day: date, interval: str | None = None) -> Path:
    parts = [out, table]
    if interval is not None:
        parts.append(f"interval={interval}")
    parts += [f"symbol={symbol}", f"date={day.isoformat()}"]
    return Path(*parts)


def write_partition(table: pa.Table, directory: Path, fmt: str) -> Path:
    """Write `table` as `directory/part-0.<fmt>` (replacing an earlier export of the same partition)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"part-0.{fmt}"
    temporary = directory / f".part-0.{fmt}.tmp"
    if fmt == "parquet":
        pq.write_table(table, temporary, compression=PARQUET_COMPRESSION)
    else:
        pacsv.write_csv(table, temporary)
    os.replace(temporary, target)
    return target
