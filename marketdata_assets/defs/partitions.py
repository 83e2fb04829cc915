"""The partition space of every daily dataset: UTC date x dynamic symbol, and the key helpers every def uses.

Dagster allows two dimensions, so the interval lives in the asset key (`klines_1h`). Dimension names sort
alphabetically in keys: "2024-01-15|BTCUSDT" is date 2024-01-15, symbol BTCUSDT.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import dagster as dg

from marketdata_assets.binance.intervals import InvalidInputError, parse_day, validate_symbol

SYMBOLS_PARTITIONS_NAME = "symbols"
DATE_DIM = "date"
SYMBOL_DIM = "symbol"

symbols_partitions = dg.DynamicPartitionsDefinition(name=SYMBOLS_PARTITIONS_NAME)


def daily_symbol_partitions(start_date: date) -> dg.MultiPartitionsDefinition:
    """Every complete UTC day from `start_date` to yesterday, for every symbol the discovery sensor added."""
    return dg.MultiPartitionsDefinition(
        {
            DATE_DIM: dg.DailyPartitionsDefinition(start_date=start_date.isoformat(), timezone="UTC"),
            SYMBOL_DIM: symbols_partitions,
        }
    )


def partition_key(day: date, symbol: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({DATE_DIM: day.isoformat(), SYMBOL_DIM: symbol})


def parse_partition_key(key: str | dg.MultiPartitionKey) -> tuple[date, str]:
    """(day, symbol) of a kline partition key; a clear error naming the key when it is not one."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
    else:
        parts = str(key).split("|")
        if len(parts) != 2:
            raise InvalidInputError(f"partition {key!r}: expected 'YYYY-MM-DD|SYMBOL'")
        dims = {DATE_DIM: parts[0], SYMBOL_DIM: parts[1]}
    try:
        return parse_day(dims[DATE_DIM]), validate_symbol(dims[SYMBOL_DIM])
    except InvalidInputError as exc:
        raise InvalidInputError(f"partition {key!r}: {exc}") from None


def days_by_symbol(keys: Iterable[str | dg.MultiPartitionKey]) -> dict[str, list[date]]:
    """Group partition keys of a run (one key or a range) into sorted days per symbol."""
    grouped: dict[str, set[date]] = {}
    for key in keys:
        day, symbol = parse_partition_key(key)
        grouped.setdefault(symbol, set()).add(day)
    return {symbol: sorted(days) for symbol, days in sorted(grouped.items())}
