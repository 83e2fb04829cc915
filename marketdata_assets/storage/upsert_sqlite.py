"""SQLite path for klines: one compiled INSERT ... ON CONFLICT DO UPDATE ... WHERE, executemany of strings.

Decimal columns are TEXT on SQLite, so the strings Binance sent are stored as they are (after a strict
per-line check, since SQLite itself would accept anything). The statement is compiled once from Core and
run through the DB-API executemany with plain tuples: no per-value Python type processing, and no Python
loop per row either: a row is a slice of the split text between the labels and the source (the statement
takes its parameters in the table's column order, the archive fields in the CSV's). Open/close times and
counts go in as their digits; SQLite's INTEGER affinity stores them as integers before the key and the
rewrite rule compare them. Building rows field by field in Python cost 1-1.5 s of a symbol-year's 10 s.
Inserted vs updated: rows in the batch's key range before and after, plus the statement's rowcount.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from itertools import repeat
from operator import add

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

from marketdata_assets.binance.intervals import datetime_to_ms
from marketdata_assets.binance.klines import RawKlines
from marketdata_assets.storage import kline_text
from marketdata_assets.storage.tables import kline_data
from marketdata_assets.storage.upsert_rule import KEY_COLUMNS, rewrite_condition, rewrite_values

# Row layout produced below, the table's column order: the labels, the archive fields but `ignore`, source and
# write time (the statement's parameters come in the table's order).
_FIELD_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "trades_count",
    "taker_buy_volume", "taker_buy_quote_volume",
)
_ROW_COLUMNS = ("symbol", "interval", *_FIELD_COLUMNS, "source", "ingested_at")
_ARCHIVE_FIELDS = len(_FIELD_COLUMNS) + 1  # `ignore` last
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
    names = list(compiled.positiontup or [])
    # the statement's parameters: the row's columns, then the rewrite rule's own constants
    if names[:len(_ROW_COLUMNS)] != list(_ROW_COLUMNS):
        raise AssertionError(f"unexpected parameter order of the kline upsert: {names}")
    constants = tuple(compiled.params[name] for name in names[len(_ROW_COLUMNS):])
    now_ms = datetime_to_ms(datetime.now(UTC))
    inserted = updated = unchanged = 0
    for raw in batches:
        kline_text.check_labels(raw)
        body = kline_text.normalised_body(raw)
        if not body:
            continue
        kline_text.check_lines(raw, body)  # 12 well-formed fields on every line: the split below relies on it
        fields = body.decode("ascii").replace("\n", ",").split(",")
        del fields[-1]  # after the last newline
        del fields[_ARCHIVE_FIELDS - 1::_ARCHIVE_FIELDS]  # `ignore`
        head, tail = (raw.symbol, raw.interval), (raw.source, now_ms, *constants)
        columns = [iter(fields)] * len(_FIELD_COLUMNS)
        rows = list(map(add, map(add, repeat(head), zip(*columns, strict=True)), repeat(tail)))
        times = [int(t) for t in fields[::len(_FIELD_COLUMNS)]]
        lo, hi = min(times), max(times)
        before = _count_range(conn, table, raw, lo, hi)
        written = conn.exec_driver_sql(str(compiled), rows).rowcount
        new = _count_range(conn, table, raw, lo, hi) - before
        inserted += new
        updated += written - new
        unchanged += len(rows) - written
    return inserted, updated, unchanged
