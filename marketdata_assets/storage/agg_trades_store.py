"""Historical writes and reads of `agg_trades`: PostgreSQL by COPY of the CSV bytes, SQLite by executemany.

The table is the one the streaming sidecar writes (storage/tables_stream.py), so replay and export see one
history; archive rows carry source `archive` and no event_time.

PostgreSQL: each batch's CSV, already sorted and free of duplicate ids, is COPYed as it is into a temp
table, then moved with one INSERT ... SELECT (plain when no stored id of the symbol lies in the batch's id
range, the common backfill case; ON CONFLICT with the upsert rule otherwise). The rule: a row is rewritten
only when its values differ, and an `archive` row is never overwritten by `rest`; a `rest` row equal to
the archive's is promoted to `archive`. Rows and the ledger rows describing them share one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from marketdata_assets.binance.agg_trades import AggTradeBatch, AggTradesFormatError
from marketdata_assets.binance.intervals import DAY_MS, day_start_ms
from marketdata_assets.storage.hung_guard import guarded
from marketdata_assets.storage.ledger import LedgerRow, upsert_ledger
from marketdata_assets.storage.sql_time import epoch_ms, ms_to_timestamptz
from marketdata_assets.storage.tables_stream import agg_trades

VALUE_COLUMNS = ("price", "quantity", "first_trade_id", "last_trade_id", "trade_time", "is_buyer_maker")
STAGE = "agg_trades_stage"
_stage = sa.Table(
    STAGE, sa.MetaData(),
    sa.Column("agg_id", sa.BigInteger()), sa.Column("price", postgresql.NUMERIC()),
    sa.Column("quantity", postgresql.NUMERIC()), sa.Column("first_trade_id", sa.BigInteger()),
    sa.Column("last_trade_id", sa.BigInteger()), sa.Column("transact_time", sa.BigInteger()),
    sa.Column("is_buyer_maker", sa.Boolean()),
    prefixes=["TEMPORARY"], postgresql_on_commit="DROP",
)
_COPY = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, NULL {})").format(
    sql.Identifier(STAGE), sql.SQL(", ").join(sql.Identifier(c.name) for c in _stage.columns), sql.Literal("\\N"))
_TARGET = ["symbol", "agg_id", *VALUE_COLUMNS, "source", "ingested_at"]


def _rule(excluded) -> sa.ColumnElement[bool]:
    stored = agg_trades.c
    differ = sa.or_(*[stored[c] != excluded[c] for c in VALUE_COLUMNS])
    archive_kept = sa.or_(excluded.source == "archive", stored.source != "archive")
    promotes = sa.and_(excluded.source == "archive", stored.source != "archive")
    return sa.and_(archive_kept, sa.or_(differ, promotes))


def _staged(symbol: str, source: str) -> sa.Select:
    s = _stage.c
    return sa.select(sa.literal(symbol, sa.String), s.agg_id, s.price, s.quantity, s.first_trade_id,
                     s.last_trade_id, ms_to_timestamptz(s.transact_time), s.is_buyer_maker,
                     sa.literal(source, sa.String), sa.func.now())


class AggTradeStore:
    """agg_trades reads and idempotent writes; one class for both databases."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    # ---- write ------------------------------------------------------------------------------------
    def write(self, batches: Sequence[AggTradeBatch], ledger_rows: Sequence[LedgerRow] = ()) -> int:
        """Store the batches and their ledger rows in ONE transaction; returns rows written."""
        written = 0
        staged = False
        with self.engine.begin() as conn:
            for batch in batches:
                if not len(batch):
                    continue
                if not self.postgres:
                    written += self._write_sqlite(conn, batch)
                    continue
                if staged:
                    conn.execute(sa.delete(_stage))
                else:
                    _stage.create(conn)
                    staged = True
                written += self._write_pg(conn, batch)
            upsert_ledger(conn, ledger_rows)
        return written

    def _write_pg(self, conn: Connection, batch: AggTradeBatch) -> int:
        try:
            with guarded(conn) as driver, driver.cursor() as cursor, cursor.copy(_COPY) as copy:
                copy.write(batch.csv)
        except (psycopg.errors.DataError, psycopg.errors.BadCopyFileFormat) as error:
            raise AggTradesFormatError(f"{batch.symbol} aggTrades ({batch.source}): {error.diag.message_primary} "
                                       f"({error.diag.context or ''})") from error
        lo, hi = int(batch.ids[0]), int(batch.ids[-1])
        k = agg_trades.c
        overlap = conn.execute(sa.select(sa.literal(1)).where(
            k.symbol == batch.symbol, k.agg_id.between(lo, hi)).limit(1)).first()
        rows = _staged(batch.symbol, batch.source)
        if overlap is None:
            return conn.execute(sa.insert(agg_trades).from_select(_TARGET, rows)).rowcount
        insert = postgresql.insert(agg_trades).from_select(_TARGET, rows)
        insert = insert.on_conflict_do_update(
            index_elements=["symbol", "agg_id"],
            set_={c: insert.excluded[c] for c in (*VALUE_COLUMNS, "source", "ingested_at")},
            where=_rule(insert.excluded))
        return conn.execute(insert).rowcount

    def _write_sqlite(self, conn: Connection, batch: AggTradeBatch) -> int:
        rows = []
        now = datetime.now(UTC)
        for line in batch.csv.decode("ascii").splitlines():
            a, p, q, f, last, t, m = line.split(",")
            if m not in ("true", "false"):
                raise AggTradesFormatError(
                    f"{batch.symbol} aggTrades ({batch.source}): is_buyer_maker {m!r} in {line!r}")
            rows.append({"symbol": batch.symbol, "agg_id": int(a), "price": p, "quantity": q,
                         "first_trade_id": int(f), "last_trade_id": int(last), "trade_time": int(t),
                         "is_buyer_maker": m == "true",
                         "source": batch.source, "ingested_at": now})
        insert = sqlite.insert(agg_trades)
        insert = insert.on_conflict_do_update(
            index_elements=["symbol", "agg_id"],
            set_={c: insert.excluded[c] for c in (*VALUE_COLUMNS, "source", "ingested_at")},
            where=_rule(insert.excluded))
        return conn.execute(insert, rows).rowcount

    # ---- read -------------------------------------------------------------------------------------
    def _ms(self, column: sa.ColumnElement) -> sa.ColumnElement[int]:
        return epoch_ms(column, self.postgres)

    def day_stats(self, symbol: str, day: date) -> tuple[int, int | None, int | None]:
        """(rows, first id, last id) of the trades with transact_time in the UTC day."""
        k = agg_trades.c
        start = datetime.fromtimestamp(day_start_ms(day) / 1000, UTC)
        end = datetime.fromtimestamp((day_start_ms(day) + DAY_MS) / 1000, UTC)
        query = sa.select(sa.func.count(), sa.func.min(k.agg_id), sa.func.max(k.agg_id)).where(
            k.symbol == symbol, k.trade_time >= start, k.trade_time < end)
        with self.engine.connect() as conn:
            n, lo, hi = conn.execute(query).one()
        return int(n), lo, hi

    def predecessor(self, symbol: str, agg_id: int) -> int | None:
        """The highest stored id below `agg_id` (the previous day's last trade when that day is stored)."""
        k = agg_trades.c
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.max(k.agg_id)).where(k.symbol == symbol, k.agg_id < agg_id)).scalar()

    def ids(self, symbol: str, first: int, last: int) -> list[int]:
        k = agg_trades.c
        query = sa.select(k.agg_id).where(k.symbol == symbol, k.agg_id.between(first, last)).order_by(k.agg_id)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def rows(self, symbol: str, start_ms: int, end_ms: int) -> list[dict]:
        """Rows with transact_time in [start_ms, end_ms) as dicts (exact decimals, ms times), by id."""
        k = agg_trades.c
        query = (sa.select(k.agg_id, k.price, k.quantity, k.first_trade_id, k.last_trade_id,
                           self._ms(k.trade_time).label("transact_ms"), k.is_buyer_maker, k.source)
                 .where(k.symbol == symbol, k.trade_time >= datetime.fromtimestamp(start_ms / 1000, UTC),
                        k.trade_time < datetime.fromtimestamp(end_ms / 1000, UTC))
                 .order_by(k.agg_id))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def delete(self, symbol: str, ids: Sequence[int]) -> int:
        """Delete rows by id (tests and repairs)."""
        k = agg_trades.c
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(agg_trades).where(k.symbol == symbol, k.agg_id.in_(list(ids)))).rowcount
