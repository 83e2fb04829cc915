"""Reads and idempotent writes of `open_interest_metrics`, `book_depth` and `ticker_24h`.

Rows and the ledger rows describing them are written in one transaction (a day is never marked
complete without its rows). Writes are upserts on the table's key: a reload of the same file changes
nothing, a corrected file replaces the values.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from marketdata_assets.storage.ledger import LedgerRow, upsert_ledger
from marketdata_assets.storage.sql_time import epoch_ms

CHUNK = 5_000


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class MarketStatsStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    def write(self, table: sa.Table, rows: Sequence[dict], ledger_rows: Sequence[LedgerRow] = ()) -> int:
        """Upsert `rows` (dicts of the table's columns; `ingested_at` added) and the ledger rows, atomically."""
        now = datetime.now(UTC)
        keys = [c.name for c in table.primary_key.columns]
        with self.engine.begin() as conn:
            for i in range(0, len(rows), CHUNK):
                chunk = [{**row, "ingested_at": now} for row in rows[i:i + CHUNK]]
                insert = (postgresql.insert if self.postgres else sqlite.insert)(table)
                changed = [c.name for c in table.columns if c.name not in keys and c.name != "ingested_at"]
                statement = insert.on_conflict_do_update(
                    index_elements=keys,
                    set_={name: insert.excluded[name] for name in [*changed, "ingested_at"]},
                    # a re-run of the same file rewrites nothing
                    where=sa.or_(*[table.c[n].is_distinct_from(insert.excluded[n]) for n in changed]),
                )
                conn.execute(statement, chunk)
            upsert_ledger(conn, ledger_rows)
        return len(rows)

    def _ms(self, column: sa.ColumnElement) -> sa.ColumnElement[int]:
        return epoch_ms(column, self.postgres)

    def time_counts(self, table: sa.Table, time_column: str, symbol: str, lo_ms: int, hi_ms: int,
                    closed_right: bool = False) -> list[tuple[int, int]]:
        """(time ms, rows at that time) stored for `symbol` in [lo, hi) (or (lo, hi]), ascending."""
        column = table.c[time_column]
        bounds = (column > _dt(lo_ms), column <= _dt(hi_ms)) if closed_right else (
            column >= _dt(lo_ms), column < _dt(hi_ms))
        query = (sa.select(self._ms(column), sa.func.count()).where(table.c.symbol == symbol, *bounds)
                 .group_by(column).order_by(column))
        with self.engine.connect() as conn:
            return [(int(t), int(n)) for t, n in conn.execute(query)]

    def delete(self, table: sa.Table, time_column: str, symbol: str, lo_ms: int, hi_ms: int) -> int:
        """Delete rows with time in [lo, hi) (tests and repairs)."""
        column = table.c[time_column]
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(table).where(
                table.c.symbol == symbol, column >= _dt(lo_ms), column < _dt(hi_ms))).rowcount
