"""Parsers of the archive's daily `metrics` and `bookDepth` files (SPEC C.3, D.1), no Dagster, no database.

Both files carry a header (`create_time,symbol,...` / `timestamp,percentage,depth,notional`); a header
that differs, a row with another field count, a time or number that does not parse, a row for another
symbol or a row outside the file's day is an `ArchiveLayoutError` naming the file and the row. What is
corrected instead of refused, and reported in `corrections` so the run's metadata shows it (SPEC D.1):
rows out of chronological order are sorted; exact duplicate rows (2020-09..2021-05 metrics hold each
row twice) are dropped. Two different rows for one key are refused: there is no way to pick one.

Times are "YYYY-MM-DD HH:MM:SS" UTC (ms since the epoch are accepted too). A metrics row is stamped at
the end of its 5 minutes, so a day's file holds (00:00, 24:00]; a bookDepth file holds [00:00, 24:00).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from marketdata_assets.binance.errors import PayloadFormatError
from marketdata_assets.binance.intervals import DAY_MS
from marketdata_assets.storage.types import to_decimal

METRICS_HEADER = ("create_time", "symbol", "sum_open_interest", "sum_open_interest_value",
                  "count_toptrader_long_short_ratio", "sum_toptrader_long_short_ratio", "count_long_short_ratio",
                  "sum_taker_long_short_vol_ratio")
BOOK_DEPTH_HEADER = ("timestamp", "percentage", "depth", "notional")
METRICS_STEP_MS = 300_000
METRICS_PER_DAY = DAY_MS // METRICS_STEP_MS  # 288
BOOK_DEPTH_STEP_MS = 30_000
BOOK_DEPTH_SNAPSHOTS_PER_DAY = DAY_MS // BOOK_DEPTH_STEP_MS  # 2880 per band


class ArchiveLayoutError(PayloadFormatError):
    """An archive file whose layout or content is not what Binance publishes (names the file and the row)."""


@dataclass
class ParsedDay:
    """Rows of one file, sorted by key, duplicates dropped; `corrections` says what was changed and why."""

    path: str
    rows: list[dict] = field(default_factory=list)
    corrections: list[str] = field(default_factory=list)


def parse_time(text: str) -> int:
    """Epoch ms of "YYYY-MM-DD HH:MM:SS" (UTC) or of an integer ms/µs value."""
    text = text.strip()
    if text.isdigit():
        value = int(text)
        return value // 1000 if value > 10**14 else value
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp() * 1000)


def _rows(data: bytes, path: str, header: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    """(line number, fields) after the header; the header, when present, must be exactly `header`."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ArchiveLayoutError(f"{path}: not an ASCII CSV file ({exc})") from None
    out = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not c.strip() for c in row):
            continue
        fields = [c.strip() for c in row]
        if number == 1 and not fields[0][:1].isdigit():
            if tuple(fields) != header:
                raise ArchiveLayoutError(f"{path}: changed column layout: header {','.join(fields)!r}, "
                                         f"expected {','.join(header)!r}")
            continue
        if len(fields) != len(header):
            raise ArchiveLayoutError(f"{path} line {number}: {len(fields)} fields, expected {len(header)} "
                                     f"({','.join(header)}): {row!r}")
        out.append((number, fields))
    return out


def _finish(parsed: ParsedDay, keyed: list[tuple[tuple, int, dict]], what: str) -> ParsedDay:
    """Sort by key, drop exact duplicates, refuse conflicting ones; record each correction."""
    if any(keyed[i][0] > keyed[i + 1][0] for i in range(len(keyed) - 1)):
        parsed.corrections.append(f"{parsed.path}: rows not in chronological order: sorted by {what}")
    keyed.sort(key=lambda item: (item[0], item[1]))
    dropped = 0
    for key, number, row in keyed:
        if parsed.rows and parsed.rows[-1]["_key"] == key:
            if {k: v for k, v in parsed.rows[-1].items() if k not in ("_key", "_line")} != row:
                raise ArchiveLayoutError(f"{parsed.path} lines {parsed.rows[-1]['_line']} and {number}: two "
                                         f"different rows for {what} {key}: cannot tell which is right")
            dropped += 1
            continue
        parsed.rows.append({**row, "_key": key, "_line": number})
    if dropped:
        parsed.corrections.append(f"{parsed.path}: {dropped} exact duplicate row(s) dropped")
    for row in parsed.rows:
        del row["_key"], row["_line"]
    return parsed


def _decimal(text: str, path: str, number: int, column: str, nullable: bool = False) -> Decimal | None:
    if text == "" and nullable:
        return None
    try:
        return to_decimal(text)
    except (ValueError, TypeError, ArithmeticError):
        raise ArchiveLayoutError(f"{path} line {number}: {column}={text!r} is not a decimal number") from None


def _time(text: str, path: str, number: int, column: str, lo: int, hi: int, closed_right: bool) -> int:
    try:
        ms = parse_time(text)
    except ValueError:
        raise ArchiveLayoutError(f"{path} line {number}: {column}={text!r} is not a time") from None
    inside = lo < ms <= hi if closed_right else lo <= ms < hi
    if not inside:
        raise ArchiveLayoutError(f"{path} line {number}: {column}={text!r} is outside the file's day")
    return ms


def parse_metrics_csv(data: bytes, path: str, symbol: str, day_start_ms: int) -> ParsedDay:
    """The rows of a daily metrics file as dicts keyed like `open_interest_metrics` (create_time in ms)."""
    keyed = []
    for number, fields in _rows(data, path, METRICS_HEADER):
        if fields[1] != symbol:
            raise ArchiveLayoutError(f"{path} line {number}: a row for symbol {fields[1]!r} in the file of "
                                     f"{symbol}")
        row: dict = {"create_time": _time(fields[0], path, number, "create_time", day_start_ms,
                                          day_start_ms + DAY_MS, closed_right=True)}
        for name, text in zip(METRICS_HEADER[2:], fields[2:], strict=True):
            row[name] = _decimal(text, path, number, name, nullable=True)
        keyed.append(((row["create_time"],), number, row))
    return _finish(ParsedDay(path), keyed, "create_time")


def normalise_percentage(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


def parse_book_depth_csv(data: bytes, path: str, day_start_ms: int) -> ParsedDay:
    """The rows of a daily bookDepth file as dicts keyed like `book_depth` (snapshot_time in ms)."""
    keyed = []
    for number, fields in _rows(data, path, BOOK_DEPTH_HEADER):
        at = _time(fields[0], path, number, "timestamp", day_start_ms, day_start_ms + DAY_MS, closed_right=False)
        pct = normalise_percentage(_decimal(fields[1], path, number, "percentage"))
        row = {"snapshot_time": at, "percentage": pct,
               "depth": _decimal(fields[2], path, number, "depth"),
               "notional": _decimal(fields[3], path, number, "notional")}
        keyed.append(((at, pct), number, row))
    return _finish(ParsedDay(path), keyed, "timestamp and percentage")
