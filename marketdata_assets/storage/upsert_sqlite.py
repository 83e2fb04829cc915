"""SQLite path for klines: one compiled INSERT ... ON CONFLICT DO UPDATE ... WHERE, executemany of strings.

Decimal columns are TEXT on SQLite, so the strings Binance sent are stored as they are (after a strict
per-line check, since SQLite itself would accept anything). The statement is compiled once from Core and
run through the DB-API executemany with plain tuples: no per-value Python type processing.
Inserted vs updated: rows in the batch's key range before and after, plus the statement's rowcount.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

from marketdata_assets.binance.intervals import datetime_to_ms
from marketdata_assets.binance.klines import RawKlines
from marketdata_assets.storage import kline_text
from marketdata_assets.storage.tables import kline_data
from marketdata_assets.storage.upsert_rule import KEY_COLUMNS, rewrite_condition, rewrite_values

# Row layout produced below: the archive fields mapped to table columns, plus labels and write time.
_ROW_COLUMNS = (
    "symbol", "interval", "source", "ingested_at",
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "trades_count",
    "taker_buy_volume", "taker_buy_quote_volume",
)
_INTEGER_COLUMNS = {"open_time", "close_time", "trades_count", "ingested_at"}


@lru_cache(maxsize=8)
def _statement(table: sa.Table) -> sa.Insert:
    values = {
        name: sa.bindparam(name, type_=sa.BigInteger() if name in _INTEGER_COLUMNS else sa.Text())
        for name in _ROW_COLUMNS
    }
    insert = sqlite.insert(table).values(values)
    return insert.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_=rewrite_values(insert.excluded, insert.excluded.ingested_at),
        where=rewrite_condition(insert.excluded, table),
    )


def _count_range(conn: Connection, table: sa.Table, raw: RawKlines, lo: int, hi: int) -> int:
    k = table.c
    query = sa.select(sa.func.count()).where(
        k.symbol == raw.symbol, k.interval == raw.interval, k.open_time >= lo, k.open_time <= hi
    )
    return conn.execute(query).scalar_one()


def upsert(conn: Connection, batches: Sequence[RawKlines], table: sa.Table = kline_data) -> tuple[int, int, int]:
    """Write the batches into `table` (kline-shaped) in the caller's transaction; (inserted, updated, unchanged)."""
    compiled = _statement(table).compile(dialect=conn.dialect)
    names = compiled.positiontup or []
    constants = {name: value for name, value in compiled.params.items() if name not in _ROW_COLUMNS}
    # tuple(row) + tuple(constants) -> the statement's positional order
    extended = list(_ROW_COLUMNS) + list(constants)
    order = itemgetter(*[extended.index(name) for name in names])
    tail = tuple(constants.values())
    now_ms = datetime_to_ms(datetime.now(UTC))
    inserted = updated = unchanged = 0
    for raw in batches:
        kline_text.check_labels(raw)
        body = kline_text.normalised_body(raw)
        if not body:
            continue
        kline_text.check_lines(raw, body)
        head = (raw.symbol, raw.interval, raw.source, now_ms)
        fields = [line.split(",") for line in body.decode("ascii").splitlines()]
        times = [int(f[0]) for f in fields]
        rows = [
            order(head + (t, f[1], f[2], f[3], f[4], f[5], int(f[6]), f[7], int(f[8]), f[9], f[10]) + tail)
            for t, f in zip(times, fields, strict=True)
        ]
        lo, hi = min(times), max(times)
        before = _count_range(conn, table, raw, lo, hi)
        written = conn.exec_driver_sql(str(compiled), rows).rowcount
        new = _count_range(conn, table, raw, lo, hi) - before
        inserted += new
        updated += written - new
        unchanged += len(rows) - written
    return inserted, updated, unchanged
