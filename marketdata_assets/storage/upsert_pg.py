"""PostgreSQL bulk path for klines: COPY the archive-layout CSV into a temp table, then one INSERT ... SELECT.

Why this shape (bench/bench_store.py has the figures):
- COPY of the text Binance sent is the cheapest exact way in; NUMERIC parses the decimals once.
- Data for a range that holds no rows yet (the historical backfill) goes in with a plain INSERT ... SELECT
  inside a savepoint: about 40 % faster than ON CONFLICT, because speculative insertion costs an extra
  index probe and WAL per row. If a concurrent writer got there first the unique key fails, the savepoint
  rolls back and the batch takes the upsert path; correctness never depends on the pre-check.
- Otherwise INSERT ... ON CONFLICT DO UPDATE ... WHERE <upsert rule>; inserted vs updated are counted on
  the server from RETURNING (xmax = 0) inside a CTE, so only one row travels back.
- Rows repeated within one call (same key twice) would make ON CONFLICT fail ("cannot affect row a
  second time"); then the batch is redone with DISTINCT ON, keeping the row that came last.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from marketdata_assets.binance.klines import KlineFormatError, RawKlines
from marketdata_assets.storage import kline_text
from marketdata_assets.storage.hung_guard import guarded
from marketdata_assets.storage.sql_time import ms_to_timestamptz
from marketdata_assets.storage.tables import kline_data
from marketdata_assets.storage.upsert_rule import KEY_COLUMNS, rewrite_condition, rewrite_values, unique_key

STAGE_NAME = "kline_stage"
# bench/bench_store.py --compare turns this off to measure the plain ON CONFLICT path alone.
FRESH_RANGE_FAST_PATH = True
_DECIMAL = postgresql.NUMERIC()
_ARCHIVE_FIELDS = (
    ("open_time", sa.BigInteger()), ("open", _DECIMAL), ("high", _DECIMAL), ("low", _DECIMAL),
    ("close", _DECIMAL), ("volume", _DECIMAL), ("close_time", sa.BigInteger()), ("quote_volume", _DECIMAL),
    ("count", sa.BigInteger()), ("taker_buy_volume", _DECIMAL), ("taker_buy_quote_volume", _DECIMAL),
    ("ignore", sa.Text()),
)
_stage = sa.Table(
    STAGE_NAME,
    sa.MetaData(),
    sa.Column("symbol", sa.Text()),
    sa.Column("interval", sa.Text()),
    sa.Column("source", sa.Text()),
    *[sa.Column(name, type_) for name, type_ in _ARCHIVE_FIELDS],
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
# NULL is set to a marker that never occurs, so an empty field is a parse error instead of a NULL. Only the
# archive fields travel: a batch's labels are the stage's column defaults, set before its COPY (prefixing
# every line with them cost a copy of the text in Python and three more fields per row to parse).
_LABELS = ("symbol", "interval", "source")
_COPY = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, NULL {})").format(
    sql.Identifier(STAGE_NAME),
    sql.SQL(", ").join(sql.Identifier(c.name) for c in _stage.columns if c.name not in _LABELS),
    sql.Literal("\\N"),
)


def _set_labels(raw: RawKlines) -> sql.Composed:
    """ALTER TABLE kline_stage ALTER COLUMN symbol SET DEFAULT '...', ... for one batch (DDL takes no
    parameters: the labels, validated by check_labels, are composed in as quoted literals)."""
    labels = {"symbol": raw.symbol, "interval": raw.interval, "source": raw.source}
    return sql.SQL("ALTER TABLE {} {}").format(sql.Identifier(STAGE_NAME), sql.SQL(", ").join(
        sql.SQL("ALTER COLUMN {} SET DEFAULT {}").format(sql.Identifier(name), sql.Literal(labels[name]))
        for name in _LABELS))


_TARGET = [
    "symbol", "interval", "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "trades_count", "taker_buy_volume", "taker_buy_quote_volume", "source", "ingested_at",
]


def _staged_rows(deduplicate: bool) -> sa.Select:
    s = _stage.c
    query = sa.select(
        s.symbol, s.interval, ms_to_timestamptz(s.open_time), s.open, s.high, s.low, s.close, s.volume,
        ms_to_timestamptz(s.close_time), s.quote_volume, s["count"], s.taker_buy_volume,
        s.taker_buy_quote_volume, s.source, sa.func.now(),
    )
    if deduplicate:
        # A freshly COPYed temp heap is in line order, so the highest ctid is the row that came last.
        query = query.ext(postgresql.distinct_on(s.symbol, s.interval, s.open_time)).order_by(
            s.symbol, s.interval, s.open_time, sa.literal_column("ctid").desc()
        )
    return query


def _overlap_query(table: sa.Table) -> sa.Select:
    """Any stored row inside the [min, max] open-time range of a staged (symbol, interval)?"""
    s = _stage.c
    ranges = (
        sa.select(s.symbol, s.interval, sa.func.min(s.open_time).label("lo"), sa.func.max(s.open_time).label("hi"))
        .group_by(s.symbol, s.interval)
        .subquery("ranges")
    )
    k = table.c
    stored = sa.select(sa.literal(1)).where(
        k.symbol == ranges.c.symbol,
        k.interval == ranges.c.interval,
        k.open_time.between(ms_to_timestamptz(ranges.c.lo), ms_to_timestamptz(ranges.c.hi)),
    )
    return sa.select(sa.literal(1)).select_from(ranges).where(stored.exists()).limit(1)


def _upsert_counts(table: sa.Table, deduplicate: bool) -> sa.Select:
    insert = postgresql.insert(table).from_select(_TARGET, _staged_rows(deduplicate))
    insert = insert.on_conflict_do_update(
        constraint=unique_key(table),
        set_=rewrite_values(insert.excluded, sa.func.now()),
        where=rewrite_condition(insert.excluded, table),
    )
    written = insert.returning(sa.literal_column("(xmax = 0)", sa.Boolean).label("inserted")).cte("written")
    return sa.select(
        sa.func.count().filter(written.c.inserted), sa.func.count()
    ).select_from(written)


@lru_cache(maxsize=8)
def _statements(table: sa.Table) -> tuple[sa.Insert, sa.Select, sa.Select, sa.Select]:
    """(plain insert, overlap probe, upsert, deduplicating upsert) for a kline-shaped table, built once."""
    plain = sa.insert(table).from_select(_TARGET, _staged_rows(False)).execution_options(preserve_rowcount=True)
    return plain, _overlap_query(table), _upsert_counts(table, False), _upsert_counts(table, True)


assert KEY_COLUMNS == ("symbol", "interval", "open_time")


def _copy_batch(conn: Connection, raw: RawKlines) -> int:
    kline_text.check_labels(raw)
    body = kline_text.normalised_body(raw)
    if not body:
        return 0
    kline_text.check_characters(raw, body)
    try:
        with guarded(conn) as driver, driver.cursor() as cursor:
            cursor.execute(_set_labels(raw))
            with cursor.copy(_COPY) as copy:
                copy.write(body)
    except (psycopg.errors.DataError, psycopg.errors.BadCopyFileFormat) as error:
        diag = error.diag
        raise KlineFormatError(
            f"{kline_text.describe(raw)}: {diag.message_primary} ({diag.context or ''})".strip()
        ) from error
    return body.count(b"\n")


def upsert(conn: Connection, batches: Sequence[RawKlines], table: sa.Table = kline_data) -> tuple[int, int, int]:
    """Write the batches into `table` (kline-shaped) in the caller's transaction; (inserted, updated, unchanged)."""
    plain_insert, overlap, upsert_all, upsert_deduplicated = _statements(table)
    _stage.create(conn)
    staged = sum(_copy_batch(conn, raw) for raw in batches)
    if staged == 0:
        return 0, 0, 0
    if FRESH_RANGE_FAST_PATH and conn.execute(overlap).first() is None:
        try:
            with conn.begin_nested():
                inserted = conn.execute(plain_insert).rowcount
            return inserted, 0, staged - inserted
        except sa.exc.IntegrityError as error:
            if not isinstance(error.orig, psycopg.errors.UniqueViolation):
                raise
            # a concurrent writer got there first, or a key repeats within the call: upsert instead
    try:
        with conn.begin_nested():
            inserted, written = conn.execute(upsert_all).one()
    except sa.exc.ProgrammingError as error:
        if not isinstance(error.orig, psycopg.errors.CardinalityViolation):
            raise
        with conn.begin_nested():
            inserted, written = conn.execute(upsert_deduplicated).one()
    return inserted, written - inserted, staged - written
