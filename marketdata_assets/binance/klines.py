"""Kline rows in Binance's own 12-column layout, kept as exact CSV text, and the canonical DataFrame.

Why text: prices and volumes must be stored exactly as Binance sent them (decimal strings). The archive
already ships this layout; REST and WebSocket rows are written into it. PostgreSQL COPYs the bytes as they
are, SQLite stores the strings, and validation reads a float view (`RawKlines.frame`) of the same rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from marketdata_assets.binance.errors import PayloadFormatError
from marketdata_assets.binance.intervals import InvalidInputError

ARCHIVE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time",
    "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)
DECIMAL_COLUMNS = (
    "open", "high", "low", "close", "volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume",
)
# The canonical frame: what validation checks and what `MarketDataRepository.get_klines` returns.
FRAME_COLUMNS = (
    "symbol", "interval", "open_time", "open", "high", "low", "close", "volume", "close_time",
    "quote_volume", "trades_count", "taker_buy_volume", "taker_buy_quote_volume",
)
SOURCES = ("archive", "rest", "stream")
TIME_DTYPE = "datetime64[ms, UTC]"

_CSV_DTYPES = {name: "float64" for name in DECIMAL_COLUMNS} | {
    "open_time": "int64", "close_time": "int64", "count": "int64", "ignore": "str",
}


if TYPE_CHECKING:
    import pandas as pd


class KlineFormatError(PayloadFormatError):
    """A kline payload whose layout is not Binance's; the message names the payload."""


@dataclass(frozen=True)
class RawKlines:
    """Klines of one symbol and interval as header-less CSV bytes in the archive layout (ms timestamps)."""

    symbol: str
    interval: str
    source: str
    csv: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise InvalidInputError(f"unknown kline source {self.source!r}: expected one of {SOURCES}")

    def __len__(self) -> int:
        return self.csv.count(b"\n")

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The canonical frame (floats for prices, tz-aware UTC times) of these rows."""
        import pandas as pd  # imported on use: the streaming sidecar never needs it
        if not self.csv:
            return empty_frame()
        table = pd.read_csv(
            io.BytesIO(self.csv), header=None, names=list(ARCHIVE_COLUMNS), dtype=_CSV_DTYPES, engine="c"
        )
        frame = pd.DataFrame(
            {
                "symbol": self.symbol,
                "interval": self.interval,
                "open_time": pd.to_datetime(table["open_time"], unit="ms", utc=True).astype(TIME_DTYPE),
                **{c: table[c] for c in ("open", "high", "low", "close", "volume")},
                "close_time": pd.to_datetime(table["close_time"], unit="ms", utc=True).astype(TIME_DTYPE),
                "quote_volume": table["quote_volume"],
                "trades_count": table["count"],
                "taker_buy_volume": table["taker_buy_volume"],
                "taker_buy_quote_volume": table["taker_buy_quote_volume"],
            }
        )
        return frame

    @cached_property
    def open_times_ms(self) -> list[int]:
        """Open times in row order, read without the float view (cheap for gap accounting)."""
        return [int(line.split(b",", 1)[0]) for line in self.csv.splitlines() if line]

    def open_times_sorted_unique(self) -> bool:
        times = self.open_times_ms
        return all(a < b for a, b in zip(times, times[1:], strict=False))

    def sorted_unique(self, name: str = "klines") -> tuple[RawKlines, list[str]]:
        """Rows in open-time order with exact repeats dropped, and what was corrected (SPEC D.1: archive
        files out of order or with rows twice). Two different rows for one open time are an error."""
        times = self.open_times_ms
        if all(a < b for a, b in zip(times, times[1:], strict=False)):
            return self, []
        by_time: dict[int, bytes] = {}
        repeats = 0
        for time_ms, line in zip(times, (line for line in self.csv.splitlines() if line), strict=True):
            seen = by_time.get(time_ms)
            if seen is None:
                by_time[time_ms] = line
            elif seen == line:
                repeats += 1
            else:
                raise KlineFormatError(f"{name}: two different rows open at {time_ms}: {seen!r} and {line!r}")
        corrections = []
        if any(a > b for a, b in zip(times, times[1:], strict=False)):
            corrections.append(f"{name}: rows out of open-time order: sorted")
        if repeats:
            corrections.append(f"{name}: {repeats} duplicate row(s) dropped")
        body = b"\n".join(by_time[t] for t in sorted(by_time))
        return RawKlines(self.symbol, self.interval, self.source, body + b"\n"), corrections

    def text_rows(self) -> list[tuple[str, ...]]:
        """Rows as tuples of the 12 archive fields, exact text."""
        return [tuple(row) for row in csv.reader(io.StringIO(self.csv.decode("ascii")))]

    def select(self, start_ms: int, end_ms: int) -> RawKlines:
        """Rows whose open time is in [start_ms, end_ms)."""
        if not self.csv:
            return self
        first = int(self.csv[: self.csv.index(b",")])
        last_line = self.csv[self.csv.rstrip(b"\n").rfind(b"\n") + 1 :]
        last = int(last_line[: last_line.index(b",")])
        if start_ms <= first <= last < end_ms and self.open_times_sorted_unique():
            return self
        kept = [
            line for line in self.csv.splitlines(keepends=True)
            if line.strip() and start_ms <= int(line.split(b",", 1)[0]) < end_ms
        ]
        return RawKlines(self.symbol, self.interval, self.source, b"".join(kept))


def empty_frame() -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in FRAME_COLUMNS})
    frame["symbol"] = frame["symbol"].astype("str")
    frame["interval"] = frame["interval"].astype("str")
    frame["open_time"] = frame["open_time"].astype("int64").astype(TIME_DTYPE)
    frame["close_time"] = frame["close_time"].astype("int64").astype(TIME_DTYPE)
    frame["trades_count"] = frame["trades_count"].astype("int64")
    return frame


def _normalise_timestamp(value: bytes) -> bytes:
    # USD-M archives are in ms; spot switched to µs in 2025 (SPEC C.3). Accept both, store ms.
    if len(value) >= 16:
        return str(int(value) // 1000).encode()
    return value


def raw_klines_from_csv(data: bytes, symbol: str, interval: str, source: str = "archive",
                        name: str = "archive CSV") -> RawKlines:
    """Parse an archive CSV (with or without header, LF or CRLF, ms or µs) into RawKlines.

    Raises KlineFormatError naming `name` when the column layout is not the 12-column kline layout.
    The common case (ms timestamps, 12 fields per line) is checked with byte counts, not line by line.
    """
    # one-byte searches first: a two-byte search of a year of text costs ten times as much
    body = (data.replace(b"\r\n", b"\n") if b"\r" in data else data).strip(b"\n")
    if not body:
        return RawKlines(symbol, interval, source, b"")
    first_end = body.find(b"\n")
    first = body if first_end < 0 else body[:first_end]
    if not first.split(b",", 1)[0].strip().lstrip(b"-").isdigit():
        header = tuple(f.strip().decode("ascii", "replace") for f in first.split(b","))
        if header != ARCHIVE_COLUMNS:
            raise KlineFormatError(f"{name}: unexpected kline header {header}; expected {ARCHIVE_COLUMNS}")
        body = b"" if first_end < 0 else body[first_end + 1 :].strip(b"\n")
        if not body:
            return RawKlines(symbol, interval, source, b"")
    lines = body.count(b"\n") + 1
    micro = len(body.split(b",", 1)[0]) >= 16
    if body.count(b",") != 11 * lines or b"\n\n" in body or micro:
        body = _checked_lines(body, name, micro)
    return RawKlines(symbol, interval, source, body + b"\n")


def _checked_lines(body: bytes, name: str, micro: bool) -> bytes:
    """The slow path: find the malformed line, or convert µs timestamps to ms line by line."""
    out: list[bytes] = []
    for number, line in enumerate(body.split(b"\n"), start=1):
        if not line.strip():
            continue
        fields = line.split(b",")
        if len(fields) != 12:
            raise KlineFormatError(f"{name} line {number}: expected 12 fields, found {len(fields)}: {line[:120]!r}")
        if micro or len(fields[0]) >= 16 or len(fields[6]) >= 16:
            fields[0] = _normalise_timestamp(fields[0])
            fields[6] = _normalise_timestamp(fields[6])
            line = b",".join(fields)
        out.append(line)
    return b"\n".join(out)


def raw_klines_from_rest(rows: Iterable[Sequence], symbol: str, interval: str,
                         source: str = "rest") -> RawKlines:
    """REST kline arrays (12 items: ints and decimal strings) into RawKlines."""
    parts: list[str] = []
    for row in rows:
        if len(row) < 11:
            raise KlineFormatError(f"REST kline row for {symbol} {interval} has {len(row)} fields: {row!r}")
        parts.append(
            f"{int(row[0])},{row[1]},{row[2]},{row[3]},{row[4]},{row[5]},{int(row[6])},"
            f"{row[7]},{int(row[8])},{row[9]},{row[10]},{row[11] if len(row) > 11 else '0'}\n"
        )
    return RawKlines(symbol, interval, source, "".join(parts).encode("ascii"))


def raw_klines_from_stream(klines: Iterable[dict], symbol: str, interval: str) -> RawKlines:
    """Closed WebSocket kline objects (the `k` of a kline event) into RawKlines."""
    rows = [
        (k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"], k["n"], k["V"], k["Q"], k.get("B", "0"))
        for k in klines
    ]
    return raw_klines_from_rest(rows, symbol, interval, source="stream")


def concat(parts: Sequence[RawKlines]) -> RawKlines:
    """One RawKlines of several of the same symbol, interval and source."""
    if not parts:
        raise ValueError("concat() needs at least one RawKlines")
    first = parts[0]
    for part in parts[1:]:
        if (part.symbol, part.interval, part.source) != (first.symbol, first.interval, first.source):
            raise ValueError("concat() of klines with different symbol, interval or source")
    return RawKlines(first.symbol, first.interval, first.source, b"".join(p.csv for p in parts))
