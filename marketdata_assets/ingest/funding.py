"""Funding rates: the archive's monthly files for settled months, REST fundingRate for the rest, and the check.

Why both sources: the archive (calc_time, funding_interval_hours, last_funding_rate) carries each event's
interval but no mark price and is monthly only; REST carries the mark price (from 2023-11) but no
interval. Events are keyed on the hour (SPEC A.6: `fundingTime` has ms jitter; round(t / 1h)). An event
only REST has gets its interval from the gap to the event before it.

The check (`missing_funding`) knows that the interval is 8, 4 or 1 h per symbol and can change: the gap
between two events must equal the interval of one of them (a change of interval passes); a longer gap
is a missing event and fails, as does a closed day ending more than one interval after its last event.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from marketdata_assets.binance.archive import ArchiveClient, archive_path
from marketdata_assets.binance.errors import BinanceError
from marketdata_assets.binance.intervals import DAY_MS, InvalidInputError, day_start_ms, validate_symbol
from marketdata_assets.binance.rest import BinanceRestClient
from marketdata_assets.storage.ledger import LedgerRow, upsert_ledger
from marketdata_assets.storage.tables_funding import funding_rates
from marketdata_assets.storage.types import to_decimal
from marketdata_assets.storage.upsert_pg import timestamptz_to_ms

DATASET = "funding_rates"
HOUR_MS = 3_600_000
INTERVALS_H = (1, 2, 4, 8)
ARCHIVE_HEADER = ("calc_time", "funding_interval_hours", "last_funding_rate")
LOOKBACK_MS = 8 * HOUR_MS  # the previous event of a day is at most one (longest) interval before it


class FundingFormatError(ValueError):
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


@dataclass
class FundingDayResult:
    symbol: str
    day: date
    status: str
    events: int = 0
    missing: list[int] = field(default_factory=list)  # aligned times of missing events
    sources: dict[str, int] = field(default_factory=dict)
    archive_checksum: str | None = None
    notes: list[str] = field(default_factory=list)


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


def missing_funding(events: Sequence[tuple[int, int]], start_ms: int, end_ms: int,
                    previous: tuple[int, int] | None = None) -> list[int]:
    """Aligned times of funding events missing in [start_ms, end_ms).

    `events`: (aligned time, interval hours) ascending, inside the range; `previous`: the last event before
    it (None: nothing before, e.g. before listing). `end_ms` is the end of what has happened (a closed day).
    """
    missing: list[int] = []
    last = previous
    for at, hours in events:
        if last is not None:
            gap = at - last[0]
            allowed = {last[1] * HOUR_MS, hours * HOUR_MS}
            if gap not in allowed:
                step = last[1] * HOUR_MS
                missing += [t for t in range(last[0] + step, at, step) if start_ms <= t < end_ms] or [at - step]
        last = (at, hours)
    if last is not None:
        step = last[1] * HOUR_MS
        missing += [t for t in range(last[0] + step, end_ms, step) if t >= start_ms]
    return missing


class FundingStore:
    """Reads and idempotent writes of funding_rates (an archive row is never overwritten by REST)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    def upsert(self, events: Sequence[FundingEvent], ledger_rows: Sequence[LedgerRow] = ()) -> int:
        now = datetime.now(UTC)
        rows = [{"symbol": e.symbol, "funding_time": e.funding_ms, "calc_time": e.calc_ms, "funding_rate": e.rate,
                 "mark_price": e.mark_price, "funding_interval_hours": e.interval_h, "source": e.source,
                 "ingested_at": now} for e in events]
        with self.engine.begin() as conn:
            if rows:
                insert = (postgresql.insert if self.postgres else sqlite.insert)(funding_rates)
                excluded = insert.excluded
                statement = insert.on_conflict_do_update(
                    index_elements=["symbol", "funding_time"],
                    set_={name: excluded[name] for name in ("calc_time", "funding_rate", "funding_interval_hours",
                                                             "source", "ingested_at")}
                    | {"mark_price": sa.func.coalesce(excluded.mark_price, funding_rates.c.mark_price)},
                    # the archive is the settled truth: REST never overwrites it
                    where=sa.or_(funding_rates.c.source != "archive", excluded.source == "archive"),
                )
                conn.execute(statement, rows)
            upsert_ledger(conn, ledger_rows)
        return len(rows)

    def events(self, symbol: str, start_ms: int, end_ms: int) -> list[tuple[int, int]]:
        """(aligned ms, interval hours) stored in [start_ms, end_ms), ascending."""
        c = funding_rates.c
        ms = timestamptz_to_ms(c.funding_time) if self.postgres else sa.type_coerce(c.funding_time, sa.BigInteger)
        lo = datetime.fromtimestamp(start_ms / 1000, UTC)
        hi = datetime.fromtimestamp(end_ms / 1000, UTC)
        query = (sa.select(ms, c.funding_interval_hours)
                 .where(c.symbol == symbol, c.funding_time >= lo, c.funding_time < hi).order_by(c.funding_time))
        with self.engine.connect() as conn:
            return [(int(a), int(h)) for a, h in conn.execute(query)]

    def check_day(self, symbol: str, day: date, now_ms: int) -> list[int]:
        """Missing events of one UTC day (up to `now_ms`), looking back one longest interval for the previous."""
        start = day_start_ms(day)
        end = min(start + DAY_MS, now_ms)
        before = self.events(symbol, start - LOOKBACK_MS, start)
        inside = self.events(symbol, start, start + DAY_MS)
        return missing_funding(inside, start, end, before[-1] if before else None)


class FundingLoader:
    """Loads funding events for whole UTC days: archive months first, REST for the rest; checks each day."""

    def __init__(self, engine: Engine, rest: BinanceRestClient, archive: ArchiveClient | None, *,
                 now_ms: Callable[[], int] | None = None) -> None:
        self.store = FundingStore(engine)
        self.rest = rest
        self.archive = archive
        self.now_ms = now_ms or rest.server_time_ms

    def load(self, symbol: str, days: Sequence[date]) -> list[FundingDayResult]:
        validate_symbol(symbol)
        if not days:
            raise InvalidInputError("no days given")
        ordered = sorted(set(days))
        lo, hi = day_start_ms(ordered[0]), day_start_ms(ordered[-1]) + DAY_MS
        now = self.now_ms()
        notes: list[str] = []
        by_time: dict[int, FundingEvent] = {}
        checksums: dict[str, str] = {}
        for month in _months(ordered[0], ordered[-1]):
            month_end = day_start_ms(_next_month(month))
            if self.archive is None or month_end > now:
                continue
            path = archive_path("fundingRate", symbol, month.strftime("%Y-%m"), period="monthly")
            try:
                got = self.archive.fetch(path)
            except BinanceError as exc:
                notes.append(f"{path}: unusable ({type(exc).__name__}: {exc}); REST used")
                continue
            if got is None:
                notes.append(f"{path}: not published yet; REST used")
                continue
            checksums[month.strftime("%Y-%m")] = got.sha256
            for event in parse_archive_csv(got.csv_bytes, path, symbol):
                if lo - LOOKBACK_MS <= event.funding_ms < hi:
                    by_time[event.funding_ms] = event
        rest_rows = self.rest.funding_rate(symbol, lo - LOOKBACK_MS, hi)
        for row in rest_rows:
            if row.get("symbol", symbol) != symbol:
                raise FundingFormatError(f"fundingRate for {symbol}: a row for {row.get('symbol')!r}")
            at = align_hour(int(row["fundingTime"]))
            mark = row.get("markPrice") or None
            known = by_time.get(at)
            if known is not None:
                by_time[at] = FundingEvent(symbol, at, known.calc_ms, known.rate, known.interval_h, mark, "archive")
            else:
                by_time[at] = FundingEvent(symbol, at, int(row["fundingTime"]), str(row["fundingRate"]), None, mark,
                                           "rest")
        events = _with_intervals([by_time[t] for t in sorted(by_time)], self.store, symbol, lo)
        events = [e for e in events if lo <= e.funding_ms < hi]
        results = []
        for day in ordered:
            start = day_start_ms(day)
            mine = [e for e in events if start <= e.funding_ms < start + DAY_MS]
            result = FundingDayResult(symbol, day, "complete" if start + DAY_MS <= now else "incomplete",
                                      events=len(mine), notes=list(notes),
                                      archive_checksum=checksums.get(day.strftime("%Y-%m")))
            for e in mine:
                result.sources[e.source] = result.sources.get(e.source, 0) + 1
            results.append(result)
        self.store.upsert(events, [])
        for result in results:
            result.missing = self.store.check_day(symbol, result.day, now)
        self.store.upsert([], [_ledger(r) for r in results])
        return results


def _with_intervals(events: list[FundingEvent], store: FundingStore, symbol: str, lo: int) -> list[FundingEvent]:
    """Fill the interval of REST-only events from the gap to the previous event (stored or loaded)."""
    before = store.events(symbol, lo - LOOKBACK_MS - DAY_MS, lo - LOOKBACK_MS)
    previous = before[-1][0] if before else None
    out = []
    for event in events:
        hours = event.interval_h
        if hours is None:
            gap_h = (event.funding_ms - previous) // HOUR_MS if previous is not None else None
            hours = gap_h if gap_h in INTERVALS_H else (out[-1].interval_h if out else 8)
        out.append(FundingEvent(event.symbol, event.funding_ms, event.calc_ms, event.rate, hours, event.mark_price,
                                event.source))
        previous = event.funding_ms
    return out


def _ledger(result: FundingDayResult) -> LedgerRow:
    failed = bool(result.missing)
    return LedgerRow(
        dataset=DATASET, symbol=result.symbol, interval="", day=result.day,
        expected_rows=result.events + len(result.missing), actual_rows=result.events,
        missing=[{"interval": "", "start_ms": t, "end_ms": t + 1, "cls": "fillable"} for t in result.missing],
        sources=dict(result.sources), archive_checksum=result.archive_checksum, status=result.status,
        last_error=f"{len(result.missing)} funding event(s) missing" if failed else None,
    )


def _months(first: date, last: date) -> list[date]:
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = _next_month(month)
    return months


def _next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)
