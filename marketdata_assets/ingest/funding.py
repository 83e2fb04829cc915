"""Funding rates: the archive's monthly files for settled months, REST fundingRate for the rest.

Why both sources: the archive (calc_time, funding_interval_hours, last_funding_rate) carries each event's
interval but no mark price and is monthly only; REST carries the mark price (from 2023-11) but no
interval. Events are keyed on the hour (binance/funding.py). An event only REST has gets its interval from
the gap to the event before it.

One load covers the call's days at once (one REST range, the archive months they touch). The events and
every day's ledger row go in ONE transaction; each day's missing events are found inside it
(`FundingStore.check_day`, the rule in validation/funding_check.py) and recorded as fillable stretches.
A load that fails (REST after retries, a changed archive layout) fails every day of the call, naming
the cause and the file; nothing of it is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta

from sqlalchemy.engine import Engine

from marketdata_assets.binance.archive import ArchiveClient, archive_path
from marketdata_assets.binance.errors import BinanceError, InvalidSymbolError
from marketdata_assets.binance.exchange_info import SymbolInfo
from marketdata_assets.binance.funding import (
    HOUR_MS,
    INTERVALS_H,
    LOOKBACK_MS,
    FundingEvent,
    FundingFormatError,
    align_hour,
    parse_archive_csv,
)
from marketdata_assets.binance.intervals import DAY_MS, InvalidInputError, day_start_ms
from marketdata_assets.binance.rest import BinanceRestClient
from marketdata_assets.ingest.base import ExchangeLoader
from marketdata_assets.ingest.contract import DayResult
from marketdata_assets.ingest.days import DAY_ERRORS, describe, failed_result
from marketdata_assets.storage.funding_store import FundingStore
from marketdata_assets.storage.ledger import DayStatus, upsert_ledger
from marketdata_assets.validation.gaps import FILLABLE, Stretch

DATASET = "funding_rates"


class FundingLoader(ExchangeLoader):
    """Loads funding events for whole UTC days: archive months first, REST for the rest; checks each day."""

    dataset = DATASET

    def __init__(self, engine: Engine, rest: BinanceRestClient, archive: ArchiveClient | None, *,
                 symbols: dict[str, SymbolInfo] | None = None, now_ms: Callable[[], int] | None = None) -> None:
        super().__init__(rest, archive, symbols=symbols, now_ms=now_ms)
        self.store = FundingStore(engine)

    def load(self, symbol: str, days: Sequence[date]) -> list[DayResult]:
        self.symbol_info(symbol)
        ordered = sorted(set(days))
        if not ordered:
            return []
        now = self.now_ms()
        try:
            events, notes, checksums = self._fetch(symbol, ordered, now)
        except InvalidSymbolError as exc:
            raise InvalidInputError(f"{symbol}: {exc}") from exc
        except DAY_ERRORS as exc:
            failed = [failed_result(DATASET, symbol, day, describe(exc)) for day in ordered]
            with self.store.begin() as conn:
                upsert_ledger(conn, [r.ledger_row() for r in failed])
            return failed
        results = [self._day_result(symbol, day, now, events, notes, checksums) for day in ordered]
        with self.store.begin() as conn:
            self.store.upsert(conn, events)
            for result in results:
                missing = self.store.check_day(symbol, result.day, now, conn)
                result.gaps = [Stretch(t, t + 1, FILLABLE) for t in missing]
                result.expected_rows = result.stored_rows + len(missing)
                result.error = f"{len(missing)} funding event(s) missing" if missing else None
            upsert_ledger(conn, [r.ledger_row() for r in results])
        return results

    @staticmethod
    def _day_result(symbol: str, day: date, now: int, events: list[FundingEvent], notes: list[str],
                    checksums: dict[str, str]) -> DayResult:
        start = day_start_ms(day)
        mine = [e for e in events if start <= e.funding_ms < start + DAY_MS]
        result = DayResult(
            dataset=DATASET, symbol=symbol, interval="", day=day,
            status=DayStatus.COMPLETE if start + DAY_MS <= now else DayStatus.INCOMPLETE,
            stored_rows=len(mine), notes=list(notes), archive_checksum=checksums.get(day.strftime("%Y-%m")),
        )
        for e in mine:
            result.sources[e.source] = result.sources.get(e.source, 0) + 1
        return result

    def _fetch(self, symbol: str, ordered: list[date],
               now: int) -> tuple[list[FundingEvent], list[str], dict[str, str]]:
        """The events of the days (with their intervals), notes on the sources, archive checksums by month."""
        lo, hi = day_start_ms(ordered[0]), day_start_ms(ordered[-1]) + DAY_MS
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
        for row in self.rest.funding_rate(symbol, lo - LOOKBACK_MS, hi):
            if row.get("symbol", symbol) != symbol:
                raise FundingFormatError(f"REST fundingRate for {symbol}: a row for {row.get('symbol')!r}")
            at = align_hour(int(row["fundingTime"]))
            mark = row.get("markPrice") or None
            known = by_time.get(at)
            if known is not None:
                by_time[at] = FundingEvent(symbol, at, known.calc_ms, known.rate, known.interval_h, mark, "archive")
            else:
                by_time[at] = FundingEvent(symbol, at, int(row["fundingTime"]), str(row["fundingRate"]), None, mark,
                                           "rest")
        events = _with_intervals([by_time[t] for t in sorted(by_time)], self.store, symbol, lo)
        return [e for e in events if lo <= e.funding_ms < hi], notes, checksums


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


def _months(first: date, last: date) -> list[date]:
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = _next_month(month)
    return months


def _next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)
