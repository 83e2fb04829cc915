"""What can be exported: one `TableSpec` per stored dataset, with the column that dates its rows.

The Arrow type of each column follows its SQLAlchemy type, so a new table only needs a spec here:
ExactDecimal -> decimal128(38, 8) (Binance never sends more than 8 decimals; a value that has more is
refused with an error naming the column, never rounded), UtcTimestamp -> timestamp[ms, UTC], Boolean ->
bool, integers -> int64, strings and JSON -> string (JSON as its text).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import sqlalchemy as sa

from marketdata_assets.binance.intervals import InvalidInputError
from marketdata_assets.storage.tables import kline_data
from marketdata_assets.storage.tables_stream import agg_trades, mark_price_updates, order_book_snapshots, ticker_24h
from marketdata_assets.storage.types import ExactDecimal, UtcTimestamp

DECIMAL_PRECISION = 38
DECIMAL_SCALE = 8
DECIMAL_TYPE = pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE)
TIME_TYPE = pa.timestamp("ms", tz="UTC")
# operational columns that say nothing about the market
SKIPPED_COLUMNS = frozenset({"id", "ingested_at"})

DECIMAL, TIME, BOOL, INT, TEXT, JSON = "decimal", "time", "bool", "int", "text", "json"


@dataclass(frozen=True)
class TableSpec:
    """One exportable dataset: its table, the time column that dates rows, and the row order."""

    name: str
    table: sa.Table
    time_column: str
    order_by: tuple[str, ...]
    has_interval: bool = False
    rows_per_day_hint: int = 1_440  # sizes the read windows (memory stays bounded on trade-sized days)

    @property
    def partition_columns(self) -> tuple[str, ...]:
        return ("interval", "symbol") if self.has_interval else ("symbol",)

    @property
    def columns(self) -> list[sa.Column]:
        """The exported columns, in table order (partition columns are in the directory names instead)."""
        return [c for c in self.table.columns
                if c.name not in SKIPPED_COLUMNS and c.name not in self.partition_columns]

    def kind(self, column: sa.Column) -> str:
        return column_kind(column)

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, ARROW_TYPES[column_kind(c)], nullable=c.nullable)
                          for c in self.columns])


ARROW_TYPES = {DECIMAL: DECIMAL_TYPE, TIME: TIME_TYPE, BOOL: pa.bool_(), INT: pa.int64(), TEXT: pa.string(),
               JSON: pa.string()}


def column_kind(column: sa.Column) -> str:
    kind = column.type
    if isinstance(kind, ExactDecimal):
        return DECIMAL
    if isinstance(kind, UtcTimestamp):
        return TIME
    if isinstance(kind, sa.Boolean):
        return BOOL
    if isinstance(kind, sa.Integer):
        return INT
    if isinstance(kind, sa.JSON):
        return JSON
    return TEXT


_SPECS: dict[str, TableSpec] = {}


def register(spec: TableSpec) -> TableSpec:
    _SPECS[spec.name] = spec
    return spec


register(TableSpec("klines", kline_data, "open_time", ("open_time",), has_interval=True))
register(TableSpec("agg_trades", agg_trades, "trade_time", ("trade_time", "agg_id"), rows_per_day_hint=1_500_000))
register(TableSpec("mark_price_updates", mark_price_updates, "event_time", ("event_time",),
                   rows_per_day_hint=86_400))
register(TableSpec("ticker_24h", ticker_24h, "event_time", ("event_time",), rows_per_day_hint=86_400))
register(TableSpec("order_book_snapshots", order_book_snapshots, "event_time", ("event_time", "last_update_id"),
                   rows_per_day_hint=86_400))


def table_names() -> list[str]:
    _load_optional()
    return sorted(_SPECS)


def table_spec(name: str) -> TableSpec:
    """The spec of an exportable table; a clear error naming the input otherwise."""
    _load_optional()
    try:
        return _SPECS[name]
    except KeyError:
        raise InvalidInputError(f"unknown table {name!r}: expected one of {', '.join(sorted(_SPECS))}") from None


def _load_optional() -> None:
    """Tables defined by other modules register themselves here (funding rates)."""
    try:
        from marketdata_assets.storage.tables_funding import funding_rates
    except ImportError:
        return
    if "funding_rates" not in _SPECS:
        register(TableSpec("funding_rates", funding_rates, "funding_time", ("funding_time",), rows_per_day_hint=24))
