"""Column types that keep Binance's numbers exact and times in UTC on both PostgreSQL and SQLite.

Why: a price such as "16537.50" must come back as exactly that decimal, never a float. PostgreSQL has an
unconstrained NUMERIC for it (it keeps the scale Binance sent); SQLite has no exact decimal type, so the
string itself is stored. Times are tz-aware on PostgreSQL (TIMESTAMPTZ) and epoch milliseconds on SQLite
(an integer compares and indexes correctly, and converts without a parser).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import BigInteger, Numeric, Text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TIMESTAMP, TypeDecorator, TypeEngine

from marketdata_assets.binance.intervals import datetime_to_ms, ms_to_datetime


def to_decimal(value: Any) -> Decimal:
    """A finite Decimal from str, Decimal or int; floats are refused because they are not exact."""
    if isinstance(value, (bool, float)):
        raise TypeError(f"exact decimal column got {type(value).__name__} {value!r}: pass str, Decimal, int")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    else:
        raise TypeError(f"exact decimal column got {type(value).__name__} {value!r}")
    if not result.is_finite():
        raise ValueError(f"not a finite decimal number: {value!r}")
    return result


class ExactDecimal(TypeDecorator[Decimal]):
    """NUMERIC on PostgreSQL, TEXT on SQLite; Decimal in Python (str, Decimal or int accepted on bind)."""

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(postgresql.NUMERIC(asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        number = to_decimal(value)
        if dialect.name == "sqlite":
            return format(number, "f")  # plain notation, scale kept ("16537.50")
        return number

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


def to_utc(value: Any) -> datetime:
    """A tz-aware UTC datetime from a datetime (naive is read as UTC) or epoch milliseconds."""
    if isinstance(value, bool):
        raise TypeError(f"timestamp column got bool {value!r}")
    if isinstance(value, int):
        return ms_to_datetime(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    raise TypeError(f"timestamp column got {type(value).__name__} {value!r}: pass a datetime or epoch ms")


class UtcTimestamp(TypeDecorator[datetime]):
    """TIMESTAMPTZ on PostgreSQL, BIGINT epoch ms on SQLite; tz-aware UTC datetime in Python.

    Naive datetimes are taken as UTC (every time in this project is UTC), ints as epoch milliseconds.
    """

    impl = TIMESTAMP
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(TIMESTAMP(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        moment = to_utc(value)
        return datetime_to_ms(moment) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return to_utc(int(value) if not isinstance(value, datetime) else value)
