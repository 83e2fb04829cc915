"""Kline intervals, symbols and the UTC time grid: the vocabulary every other module validates against.

Validation happens here, at the edge, so that a bad interval or symbol fails before any download.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

MINUTE_MS = 60_000
DAY_MS = 86_400_000

# USD-M kline intervals (SPEC A.3). 1s is not served for futures; 1w and 1M are not on a fixed grid
# inside a day, so the daily partitioned loaders support the intra-day intervals only.
INTERVAL_MS: dict[str, int] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "6h": 360 * MINUTE_MS,
    "8h": 480 * MINUTE_MS,
    "12h": 720 * MINUTE_MS,
    "1d": DAY_MS,
}
# Accepted by the REST client but not by daily loaders (no fixed grid within a UTC day, or multi-day bars).
REST_ONLY_INTERVALS = ("3d", "1w", "1M")
ALL_REST_INTERVALS = (*INTERVAL_MS, *REST_ONLY_INTERVALS)

_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,30}(_[0-9]{6})?$")


class InvalidInputError(ValueError):
    """Bad user input (symbol, interval, date, URL): the message names the input."""


def interval_ms(interval: str) -> int:
    """Milliseconds of a daily-grid interval; a clear error for anything else."""
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        raise InvalidInputError(
            f"unknown interval {interval!r}: expected one of {', '.join(INTERVAL_MS)}"
        ) from None


def validate_interval(interval: str) -> str:
    """An interval the daily loaders support (on a fixed grid within a UTC day)."""
    interval_ms(interval)
    return interval


def validate_rest_interval(interval: str) -> str:
    """Any interval /fapi/v1/klines accepts, including 3d, 1w and 1M."""
    if interval not in ALL_REST_INTERVALS:
        raise InvalidInputError(f"unknown interval {interval!r}: expected one of {', '.join(ALL_REST_INTERVALS)}")
    return interval


def validate_symbol(symbol: str) -> str:
    """Syntactic check of a USD-M symbol (BTCUSDT, 1000PEPEUSDT, BTCUSDT_250627).

    Whether the exchange lists it is checked against exchangeInfo by the callers that can reach it.
    """
    if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol):
        raise InvalidInputError(
            f"invalid symbol {symbol!r}: expected upper-case letters and digits, e.g. BTCUSDT"
        )
    return symbol


def parse_day(value: str | date) -> date:
    """A UTC calendar day from 'YYYY-MM-DD' (or a date)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"invalid date {value!r}: expected YYYY-MM-DD") from None


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def datetime_to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def day_of_ms(ms: int) -> date:
    return ms_to_datetime(ms).date()


def days_between(start: date, end: date) -> list[date]:
    """Every UTC day from start to end, both inclusive."""
    if end < start:
        raise InvalidInputError(f"end date {end} is before start date {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def expected_open_times(interval: str, start_ms: int, end_ms: int) -> range:
    """Open times on the interval grid in [start_ms, end_ms)."""
    step = interval_ms(interval)
    first = -(-start_ms // step) * step
    return range(first, end_ms, step)


def bars_per_day(interval: str) -> int:
    return DAY_MS // interval_ms(interval)
