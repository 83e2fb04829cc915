"""Reads and idempotent writes of `funding_rates`, and the stored-day funding check.

Writes take the caller's connection so that a day's events and its ledger row commit in one transaction
(ingest/funding.py). The upsert rule: an archive row is never overwritten by REST (the archive is the
settled truth); REST's mark price is kept when the archive row has none. `check_day` applies the gap rule
(validation/funding_check.py) to what is stored, on the caller's connection when it gives one, so the
loader sees its own uncommitted rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from marketdata_assets.binance.funding import LOOKBACK_MS, FundingEvent
from marketdata_assets.binance.intervals import DAY_MS, day_start_ms
from marketdata_assets.storage.sql_time import epoch_ms
from marketdata_assets.storage.tables_funding import funding_rates
from marketdata_assets.validation.funding_check import missing_funding

_REPLACED = ("calc_time", "funding_rate", "funding_interval_hours", "source", "ingested_at")


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class FundingStore:
    """funding_rates on PostgreSQL or SQLite."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction for a load's rows and ledger rows."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _reading(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
            return
        with self.engine.connect() as own:
            yield own

    def upsert(self, conn: Connection, events: Sequence[FundingEvent]) -> int:
        """Write `events` in the caller's transaction; returns how many were sent."""
        if not events:
            return 0
        now = datetime.now(UTC)
        rows = [{"symbol": e.symbol, "funding_time": e.funding_ms, "calc_time": e.calc_ms, "funding_rate": e.rate,
                 "mark_price": e.mark_price, "funding_interval_hours": e.interval_h, "source": e.source,
                 "ingested_at": now} for e in events]
        insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(funding_rates)
        excluded = insert.excluded
        statement = insert.on_conflict_do_update(
            index_elements=["symbol", "funding_time"],
            set_={name: excluded[name] for name in _REPLACED}
            | {"mark_price": sa.func.coalesce(excluded.mark_price, funding_rates.c.mark_price)},
            # the archive is the settled truth: REST never overwrites it
            where=sa.or_(funding_rates.c.source != "archive", excluded.source == "archive"),
        )
        conn.execute(statement, rows)
        return len(rows)

    def events(self, symbol: str, start_ms: int, end_ms: int,
               conn: Connection | None = None) -> list[tuple[int, int]]:
        """(aligned ms, interval hours) stored in [start_ms, end_ms), ascending."""
        c = funding_rates.c
        query = (sa.select(epoch_ms(c.funding_time, self.engine), c.funding_interval_hours)
                 .where(c.symbol == symbol, c.funding_time >= _dt(start_ms), c.funding_time < _dt(end_ms))
                 .order_by(c.funding_time))
        with self._reading(conn) as reader:
            return [(int(a), int(h)) for a, h in reader.execute(query)]

    def check_day(self, symbol: str, day: date, now_ms: int, conn: Connection | None = None) -> list[int]:
        """Missing events of one UTC day (up to `now_ms`), looking back one longest interval for the previous."""
        start = day_start_ms(day)
        end = min(start + DAY_MS, now_ms)
        before = self.events(symbol, start - LOOKBACK_MS, start, conn)
        inside = self.events(symbol, start, start + DAY_MS, conn)
        return missing_funding(inside, start, end, before[-1] if before else None)
