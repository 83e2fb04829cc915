"""The code location's writes to `partition_ledger`: check status and repair attempts.

The loader owns the load columns (rows, gaps, sources, checksum, status); the checks and the repair
sensor own these two, so `marketdata gaps` can show what was checked and how often it was repaired.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from marketdata_assets.ingest.klines import DATASET
from marketdata_assets.storage.tables import partition_ledger as ledger


def _where(symbol: str, interval: str, day: date) -> sa.ColumnElement[bool]:
    return sa.and_(
        ledger.c.dataset == DATASET, ledger.c.symbol == symbol, ledger.c.interval == interval, ledger.c.day == day
    )


def record_check_status(
    engine: Engine, symbol: str, interval: str, statuses: Mapping[date, str], reset_repairs: set[date]
) -> None:
    """Store each day's check status; a day whose gap check passed gets its repair count reset."""
    if not statuses:
        return
    now = datetime.now(UTC)
    # one executemany per kind of update (a symbol-year is 365 rows: one round trip each was ~1 s)
    where = sa.and_(ledger.c.dataset == DATASET, ledger.c.symbol == symbol, ledger.c.interval == interval,
                    ledger.c.day == sa.bindparam("b_day"))
    status_only = sa.update(ledger).where(where).values(check_status=sa.bindparam("b_status"), updated_at=now)
    with_reset = status_only.values(repair_attempts=0)
    with engine.begin() as conn:
        for statement, group in ((with_reset, True), (status_only, False)):
            params = [{"b_day": day, "b_status": status} for day, status in statuses.items()
                      if (day in reset_repairs) == group]
            if params:
                conn.execute(statement, params)


def provisional_days(engine: Engine, intervals: list[str], before: date, limit: int) -> list[tuple[str, str, date]]:
    """(symbol, interval, day) loaded without the archive (REST only or partial) that are old enough to settle."""
    query = (
        sa.select(ledger.c.symbol, ledger.c.interval, ledger.c.day)
        .where(
            ledger.c.dataset == DATASET,
            ledger.c.interval.in_(intervals),
            ledger.c.day <= before,
            ledger.c.archive_checksum.is_(None),
            ledger.c.status.in_(("complete", "partial", "incomplete")),
            ledger.c.actual_rows > 0,
        )
        .order_by(ledger.c.day.desc(), ledger.c.symbol, ledger.c.interval)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [(row.symbol, row.interval, row.day) for row in conn.execute(query)]
