"""Epoch milliseconds <-> stored times in SQL, for both databases.

Why one place: PostgreSQL stores times as timestamptz and needs an expression to read them as epoch ms,
SQLite stores the ms integer itself (storage/types.py `UtcTimestamp`); every reader that wants ms without a
Python round trip per row used to write this choice out again.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine

EPOCH = sa.literal_column("TIMESTAMPTZ 'epoch'", sa.TIMESTAMP(timezone=True))
ONE_MS = sa.literal_column("INTERVAL '1 millisecond'", sa.Interval())

#: what says which database a statement is for: an engine, a connection, a dialect, or `postgres=True/False`
DialectLike = Engine | Connection | Dialect | bool


def is_postgres(on: DialectLike) -> bool:
    """True for PostgreSQL, False for SQLite (a bool is taken as already answered)."""
    if isinstance(on, bool):
        return on
    dialect = on if isinstance(on, Dialect) else on.dialect
    return dialect.name == "postgresql"


def ms_to_timestamptz(column: sa.ColumnElement[int]) -> sa.ColumnElement:
    """Epoch ms -> timestamptz (PostgreSQL), exact for every ms timestamp Binance uses."""
    return EPOCH + column * ONE_MS


def timestamptz_to_ms(column: sa.ColumnElement) -> sa.ColumnElement[int]:
    """timestamptz -> epoch ms (PostgreSQL; EXTRACT returns NUMERIC on PostgreSQL 14+: exact)."""
    return sa.cast(sa.extract("epoch", column) * 1000, sa.BigInteger)


def epoch_ms(column: sa.ColumnElement, on: DialectLike) -> sa.ColumnElement[int]:
    """A stored time column as epoch ms on the database `on` names."""
    return timestamptz_to_ms(column) if is_postgres(on) else sa.type_coerce(column, sa.BigInteger)
