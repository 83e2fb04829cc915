"""Rows as PostgreSQL COPY text, built in one buffer per batch (the writer's hot path).

Two shapes. `copy_text`: any kind's rows as they are (times as epoch ms), for the staging tables.
`agg_trade_lines`: aggregate trades in the target table's own shape (times as UTC timestamps, the batch's
`ingested_at` appended), so that they can be copied straight into `agg_trades` without a staging table and
an `INSERT ... SELECT` (PostgreSQL then does about half the work per row). One `%` format per row in C;
a timestamp's second is formatted once and reused (`_Seconds`), since a second holds many trades.

Both return None when some value would need COPY escaping (a tab, newline, carriage return or backslash):
the caller then lets psycopg format the rows one by one. Binance's values (numbers, symbols) never need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

Row = tuple[Any, ...]

_SECONDS_KEPT = 4096  # a few seconds per symbol in flight; the cache is cleared when it grows past this


class _Seconds(dict[int, str]):
    """Epoch second -> "YYYY-MM-DD HH:MM:SS": a hit is one C lookup, a miss formats the second once."""

    def __missing__(self, epoch_s: int) -> str:
        if len(self) >= _SECONDS_KEPT:
            self.clear()
        text = self[epoch_s] = datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S")
        return text


_seconds = _Seconds()


def _checked(text: str, rows: int, width: int) -> bytes | None:
    """The buffer, unless a value carried a tab, newline, carriage return or backslash of its own."""
    if (text.count("\n") != rows or text.count("\t") != rows * (width - 1)
            or "\r" in text or text.count("\\") != text.count("\\N")):
        return None
    return text.encode()


def _nulls(row: Row) -> Row:
    return tuple("\\N" if v is None else v for v in row)


def copy_text(rows: Sequence[Row], width: int) -> bytes | None:
    """Rows as COPY text as they are: `str()` of each value (PostgreSQL reads Python's `True`/`False` as
    booleans), None as `\\N` (only rows holding one pay for that)."""
    text = "\n".join(["\t".join(map(str, _nulls(row) if None in row else row)) for row in rows]) + "\n"
    return _checked(text, len(rows), width)


AGG_TRADE_COLUMNS = ("symbol", "agg_id", "price", "quantity", "first_trade_id", "last_trade_id", "trade_time",
                     "is_buyer_maker", "event_time", "source", "ingested_at")  # agg_trades' columns, in line order
_AGG_TRADE_LINE = "%s\t%d\t%s\t%s\t%d\t%d\t%s.%03d+00\t%s\t%s.%03d+00\t%s\t%s"
_AGG_TRADE_LINE_NO_EVENT = "%s\t%d\t%s\t%s\t%d\t%d\t%s.%03d+00\t%s\t\\N\t%s\t%s"


def agg_trade_lines(rows: Sequence[Row], ingested_at: str) -> bytes | None:
    """Aggregate-trade rows (the writer's order, times in epoch ms) as COPY text for `AGG_TRADE_COLUMNS`."""
    seconds = _seconds
    lines = []
    append = lines.append
    for symbol, agg_id, price, quantity, first_id, last_id, trade_time, maker, event_time, source in rows:
        second, millis = divmod(trade_time, 1000)
        if event_time is None:  # a row filled from REST
            append(_AGG_TRADE_LINE_NO_EVENT % (symbol, agg_id, price, quantity, first_id, last_id,
                                               seconds[second], millis, maker, source, ingested_at))
            continue
        event_second, event_millis = divmod(event_time, 1000)
        append(_AGG_TRADE_LINE % (symbol, agg_id, price, quantity, first_id, last_id,
                                  seconds[second], millis, maker, seconds[event_second], event_millis,
                                  source, ingested_at))
    return _checked("\n".join(lines) + "\n", len(rows), len(AGG_TRADE_COLUMNS))
