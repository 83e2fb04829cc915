"""Funding events and the parser of the archive's monthly `fundingRate` files, no Dagster, no database.

The file layout is `calc_time,funding_interval_hours,last_funding_rate` (header optional); a different
header, field count, a value that does not parse or an interval other than 1, 2, 4 or 8 h is a
`FundingFormatError` naming the file and the row. Events are keyed on the hour (SPEC A.6: `fundingTime`
has ms jitter; round(t / 1h)); 16-digit (µs) times are accepted (SPEC C.3).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from marketdata_assets.binance.errors import PayloadFormatError
from marketdata_assets.storage.types import to_decimal

HOUR_MS = 3_600_000
INTERVALS_H = (1, 2, 4, 8)
ARCHIVE_HEADER = ("calc_time", "funding_interval_hours", "last_funding_rate")
LOOKBACK_MS = 8 * HOUR_MS  # the previous event of a day is at most one (longest) interval before it


class FundingFormatError(PayloadFormatError):
    """An archive fundingRate file whose layout is not Binance's (names the file and the row)."""


@dataclass(frozen=True)
class FundingEvent:
    symbol: str
    funding_ms: int  # aligned to the hour
    calc_ms: int
    rate: str
    interval_h: int | None
    mark_price: str | None
    source: str


def align_hour(ms: int) -> int:
    """SPEC A.6: fundingTime is a few ms after the hour: round to the nearest hour."""
    return round(ms / HOUR_MS) * HOUR_MS


def parse_archive_csv(data: bytes, path: str, symbol: str) -> list[FundingEvent]:
    """Rows of a monthly fundingRate file (header optional); a changed layout is a FundingFormatError."""
    events = []
    for number, row in enumerate(csv.reader(io.StringIO(data.decode("ascii"))), start=1):
        if not row:
            continue
        if number == 1 and not row[0].strip().isdigit():
            if tuple(c.strip() for c in row) != ARCHIVE_HEADER:
                raise FundingFormatError(f"{path}: unexpected header {row!r}: expected {','.join(ARCHIVE_HEADER)}")
            continue
        if len(row) != 3:
            raise FundingFormatError(f"{path} row {number}: {len(row)} fields, expected 3: {row!r}")
        try:
            calc = int(row[0])
            hours = int(row[1])
            to_decimal(row[2])
        except (ValueError, TypeError):
            raise FundingFormatError(f"{path} row {number}: not a funding row: {row!r}") from None
        if hours not in INTERVALS_H:
            raise FundingFormatError(f"{path} row {number}: funding interval {hours} h is not one of {INTERVALS_H}")
        if calc > 10**14:  # µs (SPEC C.3: let a parser accept 16-digit times)
            calc //= 1000
        events.append(FundingEvent(symbol, align_hour(calc), calc, row[2].strip(), hours, None, "archive"))
    return events
