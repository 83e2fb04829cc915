"""Read stored rows of one table as an Arrow table, fast on both databases, values exact.

PostgreSQL: `COPY (SELECT ...) TO STDOUT` as CSV, parsed by Arrow's multithreaded reader (far faster than
fetching rows through a cursor). SQLite: one cursor fetch of the plain stored values (decimal text, epoch
ms), converted column by column. Decimals come back as their exact text (`decimals="text"`) or as
decimal128 (`decimals="decimal"`): a value with more than 8 decimals fails naming the column.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marketdata_assets.export.tables import (
    BOOL,
    DECIMAL,
    DECIMAL_TYPE,
    INT,
    JSON,
    TIME,
    TIME_TYPE,
    TableSpec,
    column_kind,
)
from marketdata_assets.storage.pg_copy import copy_out_csv
from marketdata_assets.storage.sql_time import epoch_ms


class ExportValueError(ValueError):
    """A stored value that cannot be exported exactly (names the table and column)."""


def _plain(column: sa.Column, postgres: bool) -> sa.ColumnElement:
    """The column as the database holds it: ms for times, text for decimals and JSON."""
    kind = column_kind(column)
    if kind == TIME:
        expr = epoch_ms(column, postgres)
    elif kind in (DECIMAL, JSON):
        expr = sa.cast(column, sa.Text) if postgres else sa.type_coerce(column, sa.Text)
    elif kind == BOOL and not postgres:
        expr = sa.type_coerce(column, sa.Integer)
    else:
        expr = column
    return expr.label(column.name)


def select_rows(spec: TableSpec, columns: Sequence[sa.Column], postgres: bool, symbol: str,
                start: datetime, end: datetime, interval: str | None = None) -> sa.Select:
    t = spec.table.c
    where = [t.symbol == symbol, t[spec.time_column] >= start, t[spec.time_column] < end]
    if spec.has_interval:
        where.append(t.interval == interval)
    return (sa.select(*[_plain(c, postgres) for c in columns]).where(*where)
            .order_by(*[t[name] for name in spec.order_by]))


def read_table(conn: Connection, spec: TableSpec, symbol: str, start: datetime, end: datetime, *,
               interval: str | None = None, columns: Sequence[sa.Column] | None = None,
               decimals: str = "decimal") -> pa.Table:
    """Rows of `symbol` with time in [start, end), ordered by the spec; times as timestamp[ms, UTC]."""
    cols = list(columns if columns is not None else spec.columns)
    postgres = conn.dialect.name == "postgresql"
    query = select_rows(spec, cols, postgres, symbol, start, end, interval)
    raw = _read_postgres(conn, query, cols) if postgres else _read_sqlite(conn, query, cols)
    return _typed(raw, spec, cols, decimals)


def _read_postgres(conn: Connection, query: sa.Select, cols: list[sa.Column]) -> pa.Table:
    buffer = copy_out_csv(conn, query)
    names = [c.name for c in cols]
    if not buffer.getbuffer().nbytes:
        return pa.table({name: pa.array([], _raw_type(c)) for name, c in zip(names, cols, strict=True)})
    return pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
        convert_options=pacsv.ConvertOptions(
            column_types={c.name: _raw_type(c) for c in cols},
            true_values=["t"], false_values=["f"],
            null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False,
        ),
    )


def _read_sqlite(conn: Connection, query: sa.Select, cols: list[sa.Column]) -> pa.Table:
    rows = conn.execute(query).all()
    values = list(zip(*rows, strict=True)) if rows else [() for _ in cols]
    arrays = {}
    for column, data in zip(cols, values, strict=True):
        kind = column_kind(column)
        if kind == BOOL:
            arrays[column.name] = pa.array([None if v is None else bool(v) for v in data], pa.bool_())
        else:
            arrays[column.name] = pa.array(data, _raw_type(column))
    return pa.table(arrays)


def _raw_type(column: sa.Column) -> pa.DataType:
    kind = column_kind(column)
    if kind in (TIME, INT):
        return pa.int64()
    if kind == BOOL:
        return pa.bool_()
    return pa.string()


def _typed(raw: pa.Table, spec: TableSpec, cols: list[sa.Column], decimals: str) -> pa.Table:
    arrays = []
    for column in cols:
        data = raw.column(column.name)
        kind = column_kind(column)
        if kind == TIME:
            data = data.cast(TIME_TYPE)
        elif kind == DECIMAL and decimals == "decimal":
            try:
                data = pc.cast(data, DECIMAL_TYPE)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ExportValueError(
                    f"{spec.name}.{column.name}: a stored value does not fit decimal128(38, 8) exactly ({exc})"
                ) from None
        arrays.append(data)
    return pa.table(arrays, names=[c.name for c in cols])
