"""MarketDataRepository: the store's public face (bulk kline upsert, queries, gaps, ledger).

One class for both databases; the dialect-specific bulk paths live in upsert_pg / upsert_sqlite and
kline_read. Every write method is one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from numbers import Integral
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from marketdata_assets.binance.intervals import (
    ALL_REST_INTERVALS,
    InvalidInputError,
    datetime_to_ms,
    day_start_ms,
    ms_to_datetime,
    validate_symbol,
)
from marketdata_assets.binance.klines import RawKlines
from marketdata_assets.storage import day_content, ledger, upsert_pg, upsert_sqlite

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
from marketdata_assets.storage.ledger import LedgerRow
from marketdata_assets.storage.sql_time import epoch_ms
from marketdata_assets.storage.tables import kline_data
from marketdata_assets.storage.tables_price_klines import kline_table
from marketdata_assets.validation.gaps import Gap, find_missing

TimeLike = datetime | date | int


@dataclass(frozen=True)
class UpsertResult:
    """What an upsert did: new rows, rewritten rows, and rows that were already stored as given."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def written(self) -> int:
        return self.inserted + self.updated


def to_ms(value: TimeLike, name: str = "time") -> int:
    """Epoch ms from ms ints, datetimes (naive = UTC; pandas Timestamps too) or dates (start of the day)."""
    if isinstance(value, bool):
        raise InvalidInputError(f"invalid {name} {value!r}: expected a datetime, date or epoch ms")
    if isinstance(value, Integral):  # numpy's integers too
        return int(value)
    if isinstance(value, datetime):
        return datetime_to_ms(value)
    if isinstance(value, date):
        return day_start_ms(value)
    raise InvalidInputError(f"invalid {name} {value!r}: expected a datetime, date or epoch ms")


def to_datetime(value: TimeLike, name: str = "time") -> datetime:
    """A tz-aware UTC datetime bound for queries (same inputs as `to_ms`)."""
    ms = to_ms(value, name)
    try:
        return ms_to_datetime(ms)
    except (ValueError, OverflowError, OSError):
        raise InvalidInputError(f"invalid {name} {value!r}: out of the supported time range") from None


def _check_interval(interval: str) -> str:
    if interval not in ALL_REST_INTERVALS:
        raise InvalidInputError(f"unknown interval {interval!r}: expected one of {', '.join(ALL_REST_INTERVALS)}")
    return interval


class MarketDataRepository:
    """Klines and ledger on PostgreSQL or SQLite (an Engine from `storage.engine.make_engine`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    # ---- klines: write ------------------------------------------------------------------------------
    def upsert_klines(self, batch: RawKlines | Sequence[RawKlines],
                      ledger_rows: Sequence[LedgerRow] = (), *, kind: str = "klines",
                      text_digests: Mapping[ledger.DayKey, str] | None = None) -> UpsertResult:
        """Store klines by the upsert rule, and the ledger rows describing them, in ONE transaction.

        `kind` picks the table: "klines" (kline_data) or a mark/index/premium kind (tables_price_klines).
        `text_digests`: content digests of whole days computed from the batches' text (day_content.
        kline_csv_digest); the ledger takes them instead of reading those days back only when every row
        was inserted new, so that each such day holds exactly its rows from the text.
        """
        batches = [batch] if isinstance(batch, RawKlines) else list(batch)
        table = kline_table(kind)
        with self.engine.begin() as conn:
            result = self._upsert(conn, batches, table)
            all_new = result.updated == 0 and result.unchanged == 0
            ledger.upsert_ledger(conn, ledger_rows, text_digests if all_new else None)
        return result

    def _upsert(self, conn: Connection, batches: list[RawKlines], table: sa.Table = kline_data) -> UpsertResult:
        if not any(raw.csv for raw in batches):
            return UpsertResult()
        module = upsert_pg if self.postgres else upsert_sqlite
        return UpsertResult(*module.upsert(conn, batches, table))

    def delete_klines(self, symbol: str, interval: str, start: TimeLike, end: TimeLike, *,
                      kind: str = "klines") -> int:
        """Delete rows with open_time in [start, end) (tests and repairs); returns how many."""
        table = kline_table(kind)
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(table).where(*self._where(symbol, interval, start, end, table))).rowcount

    # ---- klines: read -------------------------------------------------------------------------------
    def get_klines(self, symbol: str, interval: str, start_time: TimeLike, end_time: TimeLike, *,
                   exact: bool = False, kind: str = "klines") -> pd.DataFrame:
        """Canonical frame (klines.FRAME_COLUMNS) of open times in [start_time, end_time), sorted.

        Floats by default; `exact=True` gives Decimal objects exactly as stored.
        """
        validate_symbol(symbol)
        _check_interval(interval)
        start = to_datetime(start_time, "start_time")
        end = to_datetime(end_time, "end_time")
        from marketdata_assets.storage import kline_read  # pandas only for readers: the sidecar stays light

        read = kline_read.read_postgres if self.postgres else kline_read.read_sqlite
        table = kline_table(kind)
        with self.engine.connect() as conn:
            return read(conn, symbol, interval, start, end, exact, table)

    def kline_open_times(self, symbol: str, interval: str, start: TimeLike, end: TimeLike, *,
                         kind: str = "klines") -> np.ndarray:
        """Stored open times (epoch ms, int64, ascending) in [start, end)."""
        table = kline_table(kind)
        column = table.c.open_time
        ms = epoch_ms(column, self.engine)
        query = sa.select(ms).where(*self._where(symbol, interval, start, end, table)).order_by(column)
        import numpy as np  # here, not at the top: a re-run that loads nothing never needs it

        with self.engine.connect() as conn:
            return np.fromiter(conn.execute(query).scalars(), dtype=np.int64)

    def find_gaps(self, symbol: str, interval: str, start: TimeLike, end: TimeLike, *,
                  kind: str = "klines") -> list[Gap]:
        """Missing bars on the interval grid in [start, end), unclassified."""
        start_ms, end_ms = to_ms(start, "start"), to_ms(end, "end")
        stored = self.kline_open_times(symbol, interval, start_ms, end_ms, kind=kind)
        return find_missing(stored, interval, start_ms, end_ms)

    def count_klines(self, symbol: str | None = None, interval: str | None = None,
                     start: TimeLike | None = None, end: TimeLike | None = None, *, kind: str = "klines") -> int:
        """Rows stored, optionally for one symbol/interval and open times in [start, end)."""
        table = kline_table(kind)
        k = table.c
        conditions = []
        if symbol is not None:
            conditions.append(k.symbol == validate_symbol(symbol))
        if interval is not None:
            conditions.append(k.interval == _check_interval(interval))
        if start is not None:
            conditions.append(k.open_time >= to_datetime(start, "start"))
        if end is not None:
            conditions.append(k.open_time < to_datetime(end, "end"))
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table).where(*conditions)).scalar_one()

    def _where(self, symbol: str, interval: str, start: TimeLike, end: TimeLike,
               table: sa.Table = kline_data) -> list:
        k = table.c
        return [
            k.symbol == validate_symbol(symbol),
            k.interval == _check_interval(interval),
            k.open_time >= to_datetime(start, "start"),
            k.open_time < to_datetime(end, "end"),
        ]

    # ---- ledger -------------------------------------------------------------------------------------
    def upsert_ledger(self, rows: Iterable[LedgerRow]) -> int:
        with self.engine.begin() as conn:
            return ledger.upsert_ledger(conn, rows)

    def get_ledger(self, dataset: str, symbol: str | None = None, interval: str | None = None,
                   start_day: date | str | None = None, end_day: date | str | None = None) -> list[LedgerRow]:
        with self.engine.connect() as conn:
            return ledger.get_ledger(conn, dataset, symbol, interval, start_day, end_day)

    def ledger_checksums(self, dataset: str, symbol: str, interval: str,
                         days: Iterable[date | str]) -> dict[date, str]:
        with self.engine.connect() as conn:
            return ledger.ledger_checksums(conn, dataset, symbol, interval, days)

    def days_holding(self, dataset: str, symbol: str, interval: str, expected: Mapping[date, int]) -> set[date]:
        """The days of `expected` that still store exactly the given number of rows (day_content.days_holding)."""
        with self.engine.connect() as conn:
            return day_content.days_holding(conn, dataset, symbol, interval, expected)

    def record_archive_checked(self, dataset: str, symbol: str, interval: str, days: Iterable[date],
                               at: datetime) -> None:
        with self.engine.begin() as conn:
            ledger.record_archive_checked(conn, dataset, symbol, interval, days, at)

    def record_repair_attempt(self, dataset: str, symbol: str, interval: str, day: date | str,
                              error: str | None = None) -> int | None:
        with self.engine.begin() as conn:
            return ledger.record_repair_attempt(conn, dataset, symbol, interval, day, error)


__all__ = ["LedgerRow", "MarketDataRepository", "UpsertResult", "to_datetime", "to_ms"]
