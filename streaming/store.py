"""The database side of the writer: one batch of normalised rows -> one committed transaction.

Owns every connection the writer uses: one psycopg connection for the worker thread (`write`, `ping`),
and on PostgreSQL `ASYNC_SLOTS` async connections for small batches sent from the event loop
(`write_small`). Rows are plain tuples of str/int/bool/None so that a batch can also be spooled to disk
as JSON and replayed unchanged.

PostgreSQL: COPY into a temporary staging table, then `INSERT ... SELECT ... ON CONFLICT DO NOTHING`
(PERFORMANCE.md: the fastest idempotent path for exact NUMERIC values); times travel as epoch ms and
become timestamptz in the INSERT. Klines go through `MarketDataRepository.upsert_klines` (the archive-wins
rule lives there, once). SQLite: SQLAlchemy Core `INSERT ... ON CONFLICT DO NOTHING`.

A batch the database rejects for its content (constraint, type) is bisected until the bad rows are
isolated; the good rows are stored. A batch it cannot take because it is unreachable raises
`DatabaseUnavailable` and the writer spools it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
import sqlalchemy as sa
from psycopg import sql
from psycopg.conninfo import make_conninfo
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from marketdata_assets.binance.klines import RawKlines
from marketdata_assets.redact import one_line
from marketdata_assets.storage.hung_guard import shutdown_socket
from marketdata_assets.storage.tables_stream import (
    agg_trades,
    mark_price_updates,
    order_book_snapshots,
    stream_gaps,
    ticker_24h,
)
from streaming.copy_text import AGG_TRADE_COLUMNS, agg_trade_lines, copy_text

log = logging.getLogger(__name__)

Row = tuple[Any, ...]

# kind -> (table, column names in row order, names of the row's epoch-ms time columns)
KINDS: dict[str, tuple[sa.Table, tuple[str, ...], frozenset[str]]] = {
    "agg_trades": (agg_trades, ("symbol", "agg_id", "price", "quantity", "first_trade_id", "last_trade_id",
                                "trade_time", "is_buyer_maker", "event_time", "source"),
                   frozenset({"trade_time", "event_time"})),
    "mark_price": (mark_price_updates, ("symbol", "event_time", "mark_price", "index_price",
                                        "estimated_settle_price", "funding_rate", "next_funding_time"),
                   frozenset({"event_time", "next_funding_time"})),
    "ticker": (ticker_24h, ("symbol", "event_time", "price_change", "price_change_percent",
                            "weighted_avg_price", "last_price", "last_qty", "open_price", "high_price",
                            "low_price", "volume", "quote_volume", "open_time", "close_time", "first_id",
                            "last_id", "trade_count"),
               frozenset({"event_time", "open_time", "close_time"})),
    "book": (order_book_snapshots, ("symbol", "last_update_id", "event_time", "depth", "bids", "asks"),
             frozenset({"event_time"})),
    "gaps": (stream_gaps, ("symbol", "stream", "data_type", "interval", "start_time", "end_time", "reason",
                           "state", "rows_filled", "attempts", "last_error"),
             frozenset({"start_time", "end_time"})),
}
KLINES = "klines"  # rows: (symbol, interval, source, csv_text of one or more kline lines)
# Index of the exchange event time (ms) in each kind's row, for the latency histogram.
EVENT_TIME_INDEX = {"agg_trades": 8, "mark_price": 1, "ticker": 1, "book": 2}
JSON_COLUMNS = frozenset({"bids", "asks"})
GAP_KEY = ("symbol", "stream", "start_time")


class DatabaseUnavailable(Exception):
    """The database cannot be reached (connection refused, dropped, database missing)."""


class _Refused(Exception):
    """The database refused some row of a combined transaction (rolled back; isolate kind by kind)."""


# Up to this many rows a batch goes out as INSERT ... unnest + COMMIT in one round trip (latency: the
# quiet case); above it, COPY through staging tables (throughput: text COPY parses faster than arrays).
SMALL_BATCH = 500
# Kinds that go through COPY into a staging table (PostgreSQL); one transaction carries all of them.
COPY_KINDS = frozenset(KINDS) - {"gaps"}
CONTENT_ERRORS = (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError, ValueError, TypeError)
# Aggregate trades straight into their table (StreamStore._copy_direct), in agg_trade_lines' column order.
_DIRECT_COPY = sql.SQL("COPY {} ({}) FROM STDIN").format(
    sql.Identifier(agg_trades.name), sql.SQL(", ").join(map(sql.Identifier, AGG_TRADE_COLUMNS)))
# Async connections for small batches: one batch in flight on each, so the next can go out while the
# previous one's COMMIT waits for its WAL flush.
ASYNC_SLOTS = 2


class StreamStore:
    """Writes batches; owns the worker thread's psycopg connection and the loop's async connections."""

    def __init__(self, engine: Engine, *, repository_factory: Callable[[Engine], Any] | None = None) -> None:
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self._fairy: Any = None
        self._conn: psycopg.Connection | None = None
        # The thread connection is also read from the loop's helper thread (`conninfo`): one user at a time.
        self._lock = threading.RLock()
        self._aconns: list[psycopg.AsyncConnection | None] = [None] * ASYNC_SLOTS
        self._staged: set[str] = set()
        self._unnest_cache: dict[str, sql.Composed] = {}
        self._repository_factory = repository_factory
        self._repository: Any = None
        self.rejected: list[tuple[str, Row, str]] = []  # (kind, row, error) of the last write
        self.call_timeout_s = 15.0  # the writer sets its stuck limit here (small batches on the loop)
        # every psycopg connection of this engine in use right now (the thread's, the repository's, reads):
        # `abort` cuts them all when the server freezes
        self._in_use: set[Any] = set()
        if self.is_postgres:
            sa.event.listen(engine, "checkout", lambda dbapi, _record, _proxy: self._in_use.add(dbapi))
            sa.event.listen(engine, "checkin", lambda dbapi, _record: self._in_use.discard(dbapi))

    # ------------------------------------------------------------------ connection

    def _connection(self) -> psycopg.Connection:
        # A raw psycopg connection from the engine's pool keeps its connect args (search_path in tests).
        if self._conn is None or self._conn.closed:
            try:
                self._fairy = self.engine.raw_connection()
            except sa.exc.OperationalError as exc:
                raise DatabaseUnavailable(str(exc.orig).strip()) from exc
            self._conn = self._fairy.driver_connection
            self._staged.clear()
        return self._conn

    def conninfo(self) -> str:
        """Connection string of the thread connection (with its options, e.g. search_path): the async
        connections go to the same database as the same user."""
        with self._lock:
            try:
                info = self._connection().info
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self.close()
                raise DatabaseUnavailable(str(exc).strip()) from exc
            return make_conninfo(info.dsn, password=info.password) if info.password else info.dsn

    def close(self) -> None:
        """Drop the thread connection (after an error it is invalidated, not returned to the pool)."""
        with self._lock:
            if self._fairy is not None:
                with contextlib.suppress(Exception):  # the connection is already broken
                    self._fairy.invalidate()
            self._fairy = None
            self._conn = None

    def abort(self) -> None:
        """Shut the sockets of the connections in use down from another thread (the writer's watchdog): a
        call blocked on a frozen server returns with an error instead of waiting forever. No lock: the
        blocked thread holds it."""
        for conn in [self._conn, *list(self._in_use)]:
            if conn is not None and not getattr(conn, "closed", True):
                shutdown_socket(conn)

    def probe(self, timeout_s: int = 2) -> None:
        """Raise DatabaseUnavailable unless a fresh connection answers within `timeout_s`: while the
        database is away, the writer's checks cost seconds, not the pool's full connect timeout."""
        if not self.is_postgres:
            return
        args, kwargs = self.engine.dialect.create_connect_args(self.engine.url)
        try:
            with psycopg.connect(*args, **{**kwargs, "connect_timeout": timeout_s}) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise DatabaseUnavailable(one_line(exc)) from exc

    def ping(self) -> None:
        """Raise DatabaseUnavailable unless a trivial query succeeds."""
        if self.is_postgres:
            with self._lock:
                try:
                    self._connection().execute("SELECT 1")
                    self._conn.commit()  # type: ignore[union-attr]
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    self.close()
                    raise DatabaseUnavailable(str(exc).strip()) from exc
        else:
            try:
                with self.engine.connect() as connection:
                    connection.execute(sa.text("SELECT 1"))
            except sa.exc.OperationalError as exc:
                raise DatabaseUnavailable(str(exc).strip()) from exc

    # ------------------------------------------------------------------ batches

    def write(self, batch: dict[str, list[Row]], notify: Callable[[str, list[Row]], list[bytes]] | None = None
              ) -> dict[str, int]:
        """Store one batch (all kinds); returns rows stored per kind. Bad rows land in `self.rejected`.

        PostgreSQL: every COPY kind of the batch in one transaction (one commit, one WAL flush), then
        klines, then gap rows (a gap's state is committed after the data that filled it).
        """
        with self._lock:
            return self._write(batch, notify)

    def _write(self, batch: dict[str, list[Row]], notify: Callable[[str, list[Row]], list[bytes]] | None
               ) -> dict[str, int]:
        self.rejected = []
        written: dict[str, int] = {}
        bulk = [k for k, rows in batch.items() if rows and k in COPY_KINDS] if self.is_postgres else []
        if bulk:
            try:
                if sum(len(batch[kind]) for kind in bulk) <= SMALL_BATCH:
                    self._insert_small(bulk, batch)
                else:
                    self._copy_together(bulk, batch)
                written.update((kind, len(batch[kind])) for kind in bulk)
            except _Refused:
                pass  # rolled back; the loop below isolates the bad rows
        for kind, rows in batch.items():
            if rows and kind not in written and kind not in (KLINES, "gaps"):
                written[kind] = self._write_isolating(kind, rows)
        if batch.get(KLINES):
            written[KLINES] = self._write_klines(batch[KLINES])
        if batch.get("gaps"):
            written["gaps"] = self._write_isolating("gaps", batch["gaps"])
        if notify is not None and self.is_postgres:
            self._notify(batch, notify)
        return written

    def _copy_together(self, kinds: list[str], batch: dict[str, list[Row]]) -> None:
        """COPY + INSERT of several kinds in one transaction; _Refused (rolled back) on a content error."""
        try:
            conn = self._connection()
            for kind in kinds:
                self._ensure_stage(conn, kind)
            with conn.cursor() as cursor:
                for kind in kinds:
                    self._copy_rows(cursor, kind, batch[kind])
            conn.commit()
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.close()
            raise DatabaseUnavailable(str(exc).strip()) from exc
        except CONTENT_ERRORS as exc:
            self._rollback()
            raise _Refused(str(exc)) from exc
        except psycopg.Error:
            self._rollback()
            raise

    def _write_isolating(self, kind: str, rows: list[Row]) -> int:
        """Write rows; on a content error split the batch in halves until the bad rows are alone."""
        try:
            self._write_kind(kind, rows)
            return len(rows)
        except DatabaseUnavailable:
            raise
        except (*CONTENT_ERRORS, sa.exc.StatementError) as exc:
            if len(rows) == 1:
                message = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300]
                log.warning("database refused a %s row %r: %s", kind, rows[0], message)
                self.rejected.append((kind, rows[0], message))
                return 0
            middle = len(rows) // 2
            return self._write_isolating(kind, rows[:middle]) + self._write_isolating(kind, rows[middle:])

    def _write_kind(self, kind: str, rows: list[Row]) -> None:
        if kind == "gaps":
            self._upsert_gaps(rows)
        elif self.is_postgres:
            self._copy_insert(kind, rows)
        else:
            self._core_insert(kind, rows)

    # ------------------------------------------------------------------ PostgreSQL COPY path

    def _stage_name(self, kind: str) -> str:
        return f"_stage_{kind}"

    @staticmethod
    def _wire_types(kind: str) -> list[str]:
        """SQL types of a kind's row values: the target's, except times (epoch ms, bigint) and JSON."""
        table, columns, times = KINDS[kind]
        return ["bigint" if name in times else "jsonb" if name in JSON_COLUMNS
                else table.c[name].type.compile(dialect=postgresql.dialect()) for name in columns]

    def _selects(self, kind: str) -> list[sql.Composable]:
        _, columns, times = KINDS[kind]
        return [sql.SQL("to_timestamp({} / 1000.0)").format(sql.Identifier(c)) if c in times
                else sql.Identifier(c) for c in columns]

    def unnest_sql(self, kind: str) -> sql.Composed:
        """INSERT ... SELECT FROM unnest(one array per column): a small batch in one statement."""
        statement = self._unnest_cache.get(kind)
        if statement is None:
            table, columns, _ = KINDS[kind]
            names = sql.SQL(", ").join(map(sql.Identifier, columns))
            arrays = sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(t)) for t in self._wire_types(kind))
            statement = self._unnest_cache[kind] = sql.SQL(
                "INSERT INTO {} ({}, ingested_at) SELECT {}, now() FROM unnest({}) AS u ({}) ON CONFLICT DO NOTHING"
            ).format(sql.Identifier(table.name), names, sql.SQL(", ").join(self._selects(kind)), arrays, names)
        return statement

    def _insert_small(self, kinds: list[str], batch: dict[str, list[Row]]) -> None:
        """Every kind's INSERT and the COMMIT sent together (pipeline mode): one round trip, one wake-up
        of the server instead of COPY, INSERT and COMMIT each waiting for an answer."""
        try:
            conn = self._connection()
            with conn.pipeline(), conn.cursor() as cursor:
                for kind in kinds:
                    columns = [list(column) for column in zip(*batch[kind], strict=True)]
                    cursor.execute(self.unnest_sql(kind), columns)
                conn.commit()
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.close()
            raise DatabaseUnavailable(str(exc).strip()) from exc
        except (psycopg.Error, ValueError, TypeError) as exc:
            self._rollback()
            raise _Refused(str(exc)) from exc

    # ------------------------------------------------------------------ small batches from the event loop

    def fits_small(self, batch: dict[str, list[Row]]) -> bool:
        """Whether `write_small` may take the batch: PostgreSQL, insert-only kinds, at most SMALL_BATCH rows
        (insert-only, so the order of two small commits does not change what is stored)."""
        return (self.is_postgres and batch.keys() <= COPY_KINDS
                and sum(len(rows) for rows in batch.values()) <= SMALL_BATCH)

    async def write_small(self, batch: dict[str, list[Row]], slot: int) -> dict[str, int] | None:
        """The batch in one round trip from the event loop on async connection `slot` (no hand-off to a
        worker thread: on a busy 2-core machine every thread wake-up costs milliseconds of latency).

        Returns rows stored per kind, or None when nothing was committed: the caller then writes the
        batch with `write`, which finds out whether the database is away or isolates the refused rows.
        """
        conn = self._aconns[slot]
        try:
            async with asyncio.timeout(self.call_timeout_s):  # a frozen server: the thread path cuts it off
                if conn is None or conn.closed:
                    conninfo = await asyncio.to_thread(self.conninfo)
                    conn = self._aconns[slot] = await psycopg.AsyncConnection.connect(conninfo,
                                                                                      connect_timeout=5)
                async with conn.pipeline(), conn.cursor() as cursor:
                    for kind, rows in batch.items():
                        await cursor.execute(self.unnest_sql(kind), [list(c) for c in zip(*rows, strict=True)])
                    await conn.commit()
        except (psycopg.OperationalError, psycopg.InterfaceError, DatabaseUnavailable, TimeoutError):
            await self.close_async(slot)
            return None
        except (psycopg.Error, ValueError, TypeError):
            conn = self._aconns[slot]
            if conn is not None and not conn.closed:
                try:
                    await conn.rollback()
                except psycopg.Error:
                    await self.close_async(slot)
            return None
        return {kind: len(rows) for kind, rows in batch.items()}

    async def close_async(self, slot: int | None = None) -> None:
        """Close one async connection, or all of them."""
        for index in range(ASYNC_SLOTS) if slot is None else (slot,):
            conn, self._aconns[index] = self._aconns[index], None
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()

    def _ensure_stage(self, conn: psycopg.Connection, kind: str) -> None:
        if kind in self._staged:
            return
        _, columns, _ = KINDS[kind]
        # Staging mirrors the target's types except times, which arrive as epoch ms (bigint).
        defs = [sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(type_sql))
                for name, type_sql in zip(columns, self._wire_types(kind), strict=True)]
        conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
            sql.Identifier(self._stage_name(kind)), sql.SQL(", ").join(defs)))
        conn.commit()
        self._staged.add(kind)

    def _copy_rows(self, cursor: psycopg.Cursor, kind: str, rows: list[Row]) -> None:
        """Aggregate trades straight into their table when none is stored yet (nearly always: the pipeline
        drops the ids it has seen), else, and for every other kind, COPY into the kind's staging table and
        INSERT ... ON CONFLICT DO NOTHING into the target (no commit)."""
        if kind == "agg_trades" and self._copy_direct(cursor, rows):
            return
        table, columns, _ = KINDS[kind]
        stage = sql.Identifier(self._stage_name(kind))
        with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(
                stage, sql.SQL(", ").join(map(sql.Identifier, columns)))) as copy:
            blob = copy_text(rows, len(columns))
            if blob is not None:
                copy.write(blob)
            else:  # a value needs escaping: let psycopg format every row
                for row in rows:
                    copy.write_row(row)
        cursor.execute(sql.SQL(
            "INSERT INTO {} ({}, ingested_at) SELECT {}, now() FROM {} ON CONFLICT DO NOTHING"
        ).format(sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns)),
                 sql.SQL(", ").join(self._selects(kind)), stage))

    def _copy_direct(self, cursor: psycopg.Cursor, rows: list[Row]) -> bool:
        """COPY aggregate trades into `agg_trades` itself, inside a savepoint; False (nothing written, the
        transaction intact) when some row is already stored or a value needs escaping."""
        try:
            blob = agg_trade_lines(rows, datetime.now(UTC).isoformat())
        except (TypeError, ValueError):  # not the writer's row shape (e.g. a hand-made row): the staging path
            return False
        if blob is None:
            return False
        cursor.execute("SAVEPOINT direct_copy")
        try:
            with cursor.copy(_DIRECT_COPY) as copy:
                copy.write(blob)
        except psycopg.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT direct_copy")
            return False
        cursor.execute("RELEASE SAVEPOINT direct_copy")
        return True

    def _copy_insert(self, kind: str, rows: list[Row]) -> None:
        try:
            conn = self._connection()
            self._ensure_stage(conn, kind)
            with conn.cursor() as cursor:
                self._copy_rows(cursor, kind, rows)
            conn.commit()
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.close()
            raise DatabaseUnavailable(str(exc).strip()) from exc
        except psycopg.Error:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self._conn is not None and not self._conn.closed:
            try:
                self._conn.rollback()
            except psycopg.Error:
                self.close()

    def _notify(self, batch: dict[str, list[Row]], notify: Callable[[str, list[Row]], list[bytes]]) -> None:
        try:
            conn = self._connection()
            for kind, rows in batch.items():
                for payload in notify(kind, rows):
                    conn.execute("SELECT pg_notify('market_data', %s)", (payload.decode(),))
            conn.commit()
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.close()
            raise DatabaseUnavailable(str(exc).strip()) from exc

    # ------------------------------------------------------------------ generic (SQLite) path

    def _dicts(self, kind: str, rows: Sequence[Row]) -> list[dict[str, Any]]:
        _, columns, _ = KINDS[kind]
        now = datetime.now(UTC)
        out = []
        for row in rows:
            item = dict(zip(columns, row, strict=True))
            for name in JSON_COLUMNS & item.keys():
                if isinstance(item[name], str):
                    item[name] = orjson.loads(item[name])
            item["ingested_at"] = now
            out.append(item)
        return out

    def _dialect_insert(self, table: sa.Table) -> Any:
        return (postgresql.insert if self.is_postgres else sqlite.insert)(table)

    def _core_insert(self, kind: str, rows: list[Row]) -> None:
        table = KINDS[kind][0]
        statement = self._dialect_insert(table).on_conflict_do_nothing()
        try:
            with self.engine.begin() as connection:
                connection.execute(statement, self._dicts(kind, rows))
        except sa.exc.OperationalError as exc:
            raise DatabaseUnavailable(str(exc.orig).strip()) from exc
        except sa.exc.DBAPIError as exc:
            raise ValueError(str(exc.orig)) from exc

    def _upsert_gaps(self, rows: list[Row]) -> None:
        # The last version of each gap in the batch wins (rows are in time order).
        latest: dict[tuple, dict[str, Any]] = {}
        for item in self._dicts("gaps", rows):
            item.pop("ingested_at")
            item["detected_at"] = item["updated_at"] = datetime.now(UTC)
            latest[tuple(item[k] for k in GAP_KEY)] = item
        insert = self._dialect_insert(stream_gaps)
        statement = insert.on_conflict_do_update(
            index_elements=list(GAP_KEY),
            set_={
                "end_time": sa.func.coalesce(insert.excluded.end_time, stream_gaps.c.end_time),
                "state": insert.excluded.state, "reason": insert.excluded.reason,
                "rows_filled": insert.excluded.rows_filled, "attempts": insert.excluded.attempts,
                "last_error": insert.excluded.last_error, "updated_at": insert.excluded.updated_at,
            },
        )
        try:
            with self.engine.begin() as connection:
                connection.execute(statement, list(latest.values()))
        except sa.exc.OperationalError as exc:
            raise DatabaseUnavailable(str(exc.orig).strip()) from exc
        except sa.exc.DBAPIError as exc:
            raise ValueError(str(exc.orig)) from exc

    # ------------------------------------------------------------------ klines

    def _repo(self) -> Any:
        if self._repository is None:
            if self._repository_factory is None:
                from marketdata_assets.storage.repository import MarketDataRepository

                self._repository_factory = MarketDataRepository
            self._repository = self._repository_factory(self.engine)
        return self._repository

    def _write_klines(self, rows: list[Row]) -> int:
        groups: dict[tuple[str, str, str], list[str]] = {}
        for symbol, interval, source, text in rows:
            groups.setdefault((symbol, interval, source), []).append(text)
        stored = 0
        for (symbol, interval, source), texts in groups.items():
            raw = RawKlines(symbol, interval, source, "".join(texts).encode("ascii"))
            try:
                self._repo().upsert_klines(raw)
                stored += len(raw)
            except sa.exc.OperationalError as exc:
                raise DatabaseUnavailable(str(exc.orig).strip()) from exc
            except (sa.exc.DBAPIError, ValueError) as exc:
                if len(texts) == 1:
                    message = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300]
                    log.warning("database refused klines %s %s %r: %s", symbol, interval, texts[0], message)
                    self.rejected.append((KLINES, (symbol, interval, source, texts[0]), message))
                    continue
                stored += self._write_klines([(symbol, interval, source, t) for t in texts[:len(texts) // 2]])
                stored += self._write_klines([(symbol, interval, source, t) for t in texts[len(texts) // 2:]])
        return stored
