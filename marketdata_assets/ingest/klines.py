"""The one kline load: (symbol, interval, day) -> validated rows and a ledger entry, archive first.

`marketdata download` and the Dagster kline assets both call `KlineLoader.load`. Per day:
1. out of range (before listing, after delisting, not begun) -> ledger `out_of_range`, nothing fetched;
2. a closed day whose archive checksum is recorded (its rows all still stored, its checks not failed) ->
   `unchanged`, asking the archive only as ingest/archive_recheck.py says (nothing for a settled day
   confirmed this month; `verify=True` asks every day's .CHECKSUM);
3. archive file (checksum verified) -> rows; every hole in it is asked of REST (freqtrade's archive-first
   download with a REST fallback that never leaves a hole); a missing, corrupt or mismatching file -> REST;
4. what REST does not have either is an exchange gap (DESIGN.md section 5), recorded, not retried.
Days are validated with pandera and stored in multi-day transactions together with their ledger rows,
so a day is never marked complete without its rows, and a failed day never half-stored.

`kind` selects mark price, index price or premium index klines instead of trade klines: the same path,
their own table (storage/tables_price_klines.py) and ledger dataset (`KIND_DATASETS`); index klines are
asked by `pair`, which for USD-M perpetuals is the symbol; premium index prices may be <= 0.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

from sqlalchemy.engine import Engine

from marketdata_assets.binance.archive import ArchiveClient
from marketdata_assets.binance.errors import BinanceError, InvalidSymbolError
from marketdata_assets.binance.exchange_info import SymbolInfo
from marketdata_assets.binance.intervals import (
    DAY_MS,
    InvalidInputError,
    day_start_ms,
    interval_ms,
    ms_to_datetime,
    validate_interval,
)
from marketdata_assets.binance.kline_kinds import KLINE_KINDS
from marketdata_assets.binance.klines import KlineFormatError, RawKlines, concat
from marketdata_assets.binance.rest import BinanceRestClient
from marketdata_assets.ingest.archive_recheck import (
    CHECKSUM,
    LISTING,
    TRUSTED,
    Recheck,
    how_to_recheck,
    unmodified_by_listing,
)
from marketdata_assets.ingest.base import ExchangeLoader
from marketdata_assets.ingest.contract import DayResult
from marketdata_assets.ingest.days import describe, failed_result, out_of_range_result
from marketdata_assets.storage.day_content import kline_csv_digest
from marketdata_assets.storage.ledger import CheckStatus, DayStatus, LedgerRow, LedgerStatus
from marketdata_assets.storage.repository import MarketDataRepository
from marketdata_assets.validation.errors import KlineValidationError
from marketdata_assets.validation.gaps import (
    EXCHANGE_GAP,
    FILLABLE,
    OUT_OF_RANGE,
    Gap,
    clip_to_range,
    find_missing,
)

log = logging.getLogger(__name__)

DATASET = "klines"
# kline kind (REST path / archive data type) -> ledger dataset
KIND_DATASETS = {name: kind.dataset for name, kind in KLINE_KINDS.items()}


# where days come from: the archive for settled days with REST for the rest and every hole (auto), only
# the archive, or only REST (`marketdata download --source`)
SOURCE_AUTO, SOURCE_ARCHIVE, SOURCE_REST = "auto", "archive", "rest"
SOURCES = (SOURCE_AUTO, SOURCE_ARCHIVE, SOURCE_REST)


@dataclass
class _DayPlan:
    day: date
    lo: int  # first open time in range
    hi: int  # end (exclusive) of open times in range
    closed: bool  # the whole in-range window is in the past
    parts: list[RawKlines] = field(default_factory=list)
    result: DayResult | None = None
    # how an unchanged day was vouched for: TRUSTED (not asked), LISTING or CHECKSUM (asked: recorded)
    confirmed_by: str | None = None
    # a whole day from one file: its content digest from the text (the ledger then need not read it back)
    text_digest: str | None = None


class KlineLoader(ExchangeLoader):
    """Loads one interval (and kind) of klines day by day; see the module docstring for the rules."""

    def __init__(
        self,
        engine: Engine,
        rest: BinanceRestClient,
        archive: ArchiveClient | None,
        *,
        interval: str,
        kind: str = "klines",
        symbols: dict[str, SymbolInfo] | None = None,
        now_ms: Callable[[], int] | None = None,
        batch_days: int = 31,
        fetch_workers: int = 4,
        source: str = SOURCE_AUTO,
    ) -> None:
        if source not in SOURCES:
            raise InvalidInputError(f"unknown source {source!r}: expected one of {', '.join(SOURCES)}")
        if kind not in KIND_DATASETS:
            raise InvalidInputError(f"unknown kline kind {kind!r}: expected one of {', '.join(KIND_DATASETS)}")
        # rest: the archive is never asked; archive: REST is never asked (a day without a usable file fails,
        # holes in a file stay fillable: nobody asked the exchange whether it has them)
        super().__init__(rest, None if source == SOURCE_REST else archive, symbols=symbols, now_ms=now_ms)
        self.source = source
        self.interval = validate_interval(interval)
        self.kind = kind
        self.dataset = KIND_DATASETS[kind]
        self.repo = MarketDataRepository(engine)
        self.batch_days = batch_days
        self.fetch_workers = fetch_workers
        # rows inserted / updated / left unchanged by this loader's writes (the store counts per batch)
        self.written: Counter[str] = Counter()
        # unchanged days by how they were vouched for (TRUSTED / LISTING / CHECKSUM): the CLI's closing line
        self.rechecked: Counter[str] = Counter()

    @property
    def signed_prices(self) -> bool:
        """The premium index is a difference of prices: it can be zero or negative."""
        return self.kind == "premiumIndexKlines"

    @property
    def _kind_arg(self) -> dict[str, str]:
        """`kind=` for the clients, left out for trade klines (the clients' default)."""
        return {} if self.kind == "klines" else {"kind": self.kind}

    # -- the load ------------------------------------------------------------------------------------
    def load(
        self,
        symbol: str,
        days: Sequence[date],
        *,
        force: bool = False,
        verify: bool = False,
        progress: Callable[[DayResult], None] | None = None,
    ) -> list[DayResult]:
        """Load every day of `days`; returns one DayResult per day, in day order.

        `force` reloads every day; `verify` asks the archive whether each recorded day's file still
        carries its checksum (a re-run otherwise trusts a settled day confirmed within the month).

        A day that fails (validation, or every source failing) is reported `failed` with its cause and not
        stored; the other days are. Database errors propagate: what was committed before stays intact.
        """
        info = self.symbol_info(symbol)
        interval = self.interval
        ordered = sorted(set(days))
        chunks = _ramped_chunks(ordered, self.batch_days)
        results: list[DayResult] = []
        # one reading of the exchange's clock for the call: a later one could only close more bars
        now = self.now_ms() if chunks else 0
        # what the ledger vouches for, read once for the call (each chunk writes only its own days)
        known = {} if force or self.archive is None or not chunks else \
            self._unchanged_candidates(info.symbol, interval, ordered)
        # one bucket listing for the call, not one per chunk (a month's re-run lists its folder once)
        unmodified = self._unmodified_by_listing(info, interval, known, now, verify)
        # while one chunk is written (the database works, the GIL is free) the next one is fetched and validated
        with ThreadPoolExecutor(max_workers=1) as ahead:
            pending = ahead.submit(self._prepare_chunk, info, interval, chunks[0], now, known, unmodified, verify) \
                if chunks else None
            for index in range(len(chunks)):
                plans = pending.result()
                following = chunks[index + 1] if index + 1 < len(chunks) else None
                pending = ahead.submit(self._prepare_chunk, info, interval, following, now, known, unmodified,
                                       verify) if following else None
                try:
                    chunk_results = self._store(info, interval, plans, now)
                except BaseException:
                    if pending is not None:
                        pending.cancel()
                    raise
                for result in chunk_results:
                    if progress:
                        progress(result)
                results += chunk_results
        return results

    def _plan(self, info: SymbolInfo, interval: str, day: date, now: int) -> _DayPlan:
        step = interval_ms(interval)
        start = day_start_ms(day)
        end = start + DAY_MS
        lo = max(start, -(-(info.onboard_ms or start) // step) * step)
        last_close = min(end, info.delivery_ms or end, now)
        # open times whose bar has closed by `last_close` (close_time = open + step - 1 < last_close)
        hi = min(end, ((last_close - step) // step + 1) * step) if last_close - step >= lo else lo
        closed = hi == end or (info.delivery_ms is not None and info.delivery_ms <= now and hi > lo)
        return _DayPlan(day, lo, max(hi, lo), closed)

    def _prepare_chunk(self, info: SymbolInfo, interval: str, days: list[date], now: int,
                       candidates: dict[date, LedgerRow], unmodified: set[date], verify: bool) -> list[_DayPlan]:
        """Fetch and validate a chunk of days; nothing is written yet."""
        symbol = info.symbol
        plans = [self._plan(info, interval, day, now) for day in days]
        known = self._settle_known(plans, {d: candidates[d] for d in days if d in candidates}, unmodified, now,
                                   verify)

        def fetch(plan: _DayPlan) -> None:
            try:
                self._fetch_day(info, interval, plan, known.get(plan.day))
            except BinanceError as exc:
                if isinstance(exc, InvalidSymbolError):
                    raise
                plan.result = failed_result(self.dataset, symbol, plan.day, describe(exc), interval)

        for plan in plans:
            if plan.hi <= plan.lo:
                plan.result = out_of_range_result(self.dataset, symbol, plan.day, interval)
                plan.result.gaps = list(self._out_of_range_gaps(info, interval, plan, now))
        in_range = [plan for plan in plans if plan.result is None]
        if in_range:
            _preload_validation()
        try:
            # downloads are I/O: overlap them (the clients are thread-safe and share one weight budget)
            with ThreadPoolExecutor(max_workers=self.fetch_workers) as pool:
                list(pool.map(fetch, in_range))
        except InvalidSymbolError as exc:
            raise InvalidInputError(f"{symbol}: {exc}") from exc
        self._validate(interval, [p for p in plans if p.result is not None and p.result.status == DayStatus.COMPLETE])
        for plan in plans:
            plan.text_digest = self._text_digest(interval, plan)
        return plans

    @staticmethod
    def _text_digest(interval: str, plan: _DayPlan) -> str | None:
        """The day's digest from its one part, if that part is the day's whole grid (so the day will hold
        exactly these rows once they are all inserted new); None otherwise."""
        if plan.result is None or plan.result.status != DayStatus.COMPLETE or len(plan.parts) != 1:
            return None
        start = day_start_ms(plan.day)
        part = plan.parts[0]
        if (plan.lo, plan.hi) != (start, start + DAY_MS) or len(part) != DAY_MS // interval_ms(interval):
            return None
        digest = kline_csv_digest(part.csv)
        return digest.digest if digest is not None and digest.rows == len(part) else None

    def _unmodified_by_listing(self, info: SymbolInfo, interval: str, known: dict[date, LedgerRow], now: int,
                               verify: bool) -> set[date]:
        """The closed recorded days due a listing check (archive_recheck.py) that one listing of their folder
        shows unmodified since their confirmation."""
        listed = {day: row for day, row in known.items() if how_to_recheck(row, now, verify) == Recheck.LIST
                  and self._plan(info, interval, day, now).closed}
        if not listed or self.archive is None:
            return set()
        return unmodified_by_listing(self.archive, self.kind, info.symbol, self.interval, listed)

    @staticmethod
    def _settle_known(plans: list[_DayPlan], known: dict[date, LedgerRow], unmodified: set[date], now: int,
                      verify: bool) -> dict[date, LedgerRow]:
        """Days the ledger vouches for become `unchanged` without a request, or as the listing confirmed
        them (`unmodified`); returns the ones whose .CHECKSUM must still be asked."""
        closed = {p.day: p for p in plans if p.closed and p.day in known}
        ask: dict[date, LedgerRow] = {}
        for day, plan in closed.items():
            how = how_to_recheck(known[day], now, verify)
            if how == Recheck.TRUST or (how == Recheck.LIST and day in unmodified):
                plan.result = DayResult.from_ledger(known[day], status=DayStatus.UNCHANGED)
                plan.result.error = None
                plan.confirmed_by = LISTING if day in unmodified else TRUSTED
            else:
                ask[day] = known[day]
        return ask

    def _unchanged_candidates(self, symbol: str, interval: str, days: list[date]) -> dict[date, LedgerRow]:
        """Ledger rows of days that hold an archive checksum and whose rows the store still has; a day whose
        checks failed (an audit found its rows altered) is reloaded whatever the archive says."""
        wanted = set(days)
        ledger = {
            row.day: row for row in self.repo.get_ledger(self.dataset, symbol, interval, days[0], days[-1])
            if row.archive_checksum and row.status == LedgerStatus.COMPLETE and row.day in wanted
            and row.check_status != CheckStatus.FAILED
        }
        if not ledger:
            return {}
        # counted in the database, a number per run of days back (not a year of open times read into Python)
        holding = self.repo.days_holding(self.dataset, symbol, interval,
                                         {day: row.actual_rows for day, row in ledger.items()})
        return {day: row for day, row in ledger.items() if day in holding}

    def _fetch_day(self, info: SymbolInfo, interval: str, plan: _DayPlan, known: LedgerRow | None) -> None:
        symbol = info.symbol
        notes: list[str] = []
        checksum = None
        archived: RawKlines | None = None
        if plan.closed and self.archive is not None:
            try:
                published = None
                if known is not None:
                    published = self.archive.fetch_checksum(
                        self.archive.archive_path(self.kind, symbol, plan.day, interval=interval))
                    if published == known.archive_checksum:
                        plan.result = DayResult.from_ledger(known, status=DayStatus.UNCHANGED)
                        plan.result.error = None
                        plan.confirmed_by = CHECKSUM
                        return
                got = self.archive.daily_klines(symbol, interval, plan.day, expected=published, **self._kind_arg)
                if got is None:
                    notes.append("archive file not published yet: loaded from REST")
                else:
                    path = self.archive.archive_path(self.kind, symbol, plan.day, interval=interval)
                    archived, corrections = got[0].sorted_unique(path)
                    archived, checksum = archived.select(plan.lo, plan.hi), got[1]
                    notes += corrections
            except (BinanceError, KlineFormatError) as exc:
                archived = None  # a file we cannot trust is not loaded at all
                notes.append(f"archive unusable ({type(exc).__name__}: {exc}): loaded from REST")
                log.warning("%s %s %s: %s", symbol, interval, plan.day, notes[-1])
        if self.source == SOURCE_ARCHIVE and archived is None:
            why = notes[-1].removesuffix(": loaded from REST") if notes else "no archive file for an open day"
            plan.result = failed_result(self.dataset, symbol, plan.day, f"{why} (--source archive: REST not asked)",
                                        interval)
            return
        if archived is not None:
            plan.parts.append(archived)
            holes = find_missing(archived.open_times_ms, interval, plan.lo, plan.hi)
        else:
            holes = [Gap(interval, plan.lo, plan.hi)]
        if self.source == SOURCE_ARCHIVE:
            holes = []
        for hole in holes:
            fetched = self.rest.klines(symbol, interval, hole.start_ms, hole.end_ms, **self._kind_arg)
            fetched = fetched.select(hole.start_ms, hole.end_ms)
            if len(fetched):
                plan.parts.append(fetched)
        if archived is not None and len(holes):
            filled = sum(len(p) for p in plan.parts[1:])
            if filled:
                notes.append(f"{filled} bar(s) missing from the archive file filled from REST")
        plan.result = DayResult(dataset=self.dataset, symbol=symbol, interval=interval, day=plan.day,
                                status=DayStatus.COMPLETE, archive_checksum=checksum, notes=notes)

    @staticmethod
    def _out_of_range_gaps(info: SymbolInfo, interval: str, plan: _DayPlan, now: int) -> list[Gap]:
        start = day_start_ms(plan.day)
        return clip_to_range([Gap(interval, start, start + DAY_MS)], info.onboard_ms, info.delivery_ms, now)

    def _validate(self, interval: str, plans: list[_DayPlan]) -> None:
        """One pandera pass over the chunk; on failure, find and fail the offending days only."""
        parts = [p for plan in plans for p in plan.parts]
        if not parts:
            return
        from marketdata_assets.validation.schemas import validate_klines  # pandas + pandera: only with rows
        # one CSV parse for the whole chunk: per-day parsing costs more than the validation itself
        frame = _joined(parts).frame
        try:
            validate_klines(frame, interval, f"{parts[0].symbol} {self.kind} {interval}",
                            signed_prices=self.signed_prices)
            return
        except KlineValidationError:
            pass
        for plan in plans:
            if not plan.parts:
                continue
            day_frame = _joined(plan.parts).frame
            try:
                validate_klines(day_frame, interval, f"{plan.parts[0].symbol} {self.kind} {interval} {plan.day}",
                                signed_prices=self.signed_prices)
            except KlineValidationError as exc:
                assert plan.result is not None
                plan.result.status = DayStatus.FAILED
                plan.result.error = str(exc)
                plan.parts = []

    def _store(self, info: SymbolInfo, interval: str, plans: list[_DayPlan], now: int) -> list[DayResult]:
        step = interval_ms(interval)
        results: list[DayResult] = []
        for plan in plans:
            result = plan.result
            assert result is not None
            if result.status == DayStatus.COMPLETE:
                times = plan.parts[0].open_times_ms if len(plan.parts) == 1 else \
                    sorted(t for p in plan.parts for t in p.open_times_ms)
                result.expected_rows = len(range(plan.lo, plan.hi, step))
                result.stored_rows = len(times)
                for part in plan.parts:
                    result.sources[part.source] = result.sources.get(part.source, 0) + len(part)
                holes = find_missing(times, interval, plan.lo, plan.hi)
                # REST was asked for every hole above: what it did not return, the exchange does not have
                # (with --source archive it was not asked: the holes stay fillable)
                cls = FILLABLE if self.source == SOURCE_ARCHIVE else EXCHANGE_GAP
                result.gaps = [Gap(g.interval, g.start_ms, g.end_ms, cls) for g in holes]
                start = day_start_ms(plan.day)
                result.gaps += [g for g in self._out_of_range_gaps(info, interval, plan, now) if g.cls == OUT_OF_RANGE]
                result.gaps.sort(key=lambda g: g.start_ms)
                if times:
                    result.first_time = ms_to_datetime(times[0])
                    result.last_time = ms_to_datetime(times[-1])
                if not plan.closed or start + DAY_MS > now:
                    result.status = DayStatus.INCOMPLETE
            results.append(result)
        to_write = [p for p in plans if p.result is not None
                    and p.result.status in (DayStatus.COMPLETE, DayStatus.INCOMPLETE)]
        checked_at = ms_to_datetime(now)
        ledger = [replace(p.result.ledger_row(), archive_checked_at=checked_at if p.result.archive_checksum else None)
                  for p in plans if p.result is not None and p.result.status != DayStatus.UNCHANGED]
        confirmed = [p.day for p in plans if p.confirmed_by in (LISTING, CHECKSUM)]
        self.rechecked.update(p.confirmed_by for p in plans if p.confirmed_by)
        by_source: dict[str, list[RawKlines]] = {}
        for plan in to_write:
            for part in plan.parts:
                by_source.setdefault(part.source, []).append(part)
        batches = [concat(parts) for parts in by_source.values()]
        if confirmed:
            self.repo.record_archive_checked(self.dataset, info.symbol, interval, confirmed, checked_at)
        if batches or ledger:
            text_digests = {(self.dataset, info.symbol, interval, p.day): p.text_digest
                            for p in to_write if p.text_digest is not None}
            outcome = self.repo.upsert_klines(batches, ledger_rows=ledger, kind=self.kind, text_digests=text_digests)
            self.written["inserted"] += outcome.inserted
            self.written["updated"] += outcome.updated
            self.written["unchanged"] += outcome.unchanged
        return results


def _ramped_chunks(days: list[date], longest: int, first: int = 4) -> list[list[date]]:
    """Days in chunks of 4, 8, 16 ... up to `longest`: the database waits for the first chunk, so a short one
    starts it early; later chunks are long, because each costs a transaction and a validation pass."""
    chunks: list[list[date]] = []
    size = max(1, min(first, longest))
    while days:
        chunks.append(days[:size])
        days = days[size:]
        size = min(size * 2, longest)
    return chunks


VALIDATION_MODULE = "marketdata_assets.validation.schemas"


def _preload_validation() -> None:
    """Import pandas and pandera (0.6-0.7 s) beside the first downloads, not after them: the first chunk's
    validation otherwise waits for the import with the database idle. Only once days are to be fetched: a
    re-run of settled days never needs them."""
    if VALIDATION_MODULE not in sys.modules:
        threading.Thread(target=importlib.import_module, args=(VALIDATION_MODULE,), name="preload-validation",
                         daemon=True).start()


def _joined(parts: list[RawKlines]) -> RawKlines:
    """Rows of several sources as one RawKlines, for reading only (the source label is the first's)."""
    first = parts[0]
    return RawKlines(first.symbol, first.interval, first.source, b"".join(p.csv for p in parts))


def today_utc(now_ms: int | None = None) -> date:
    """Today in UTC, by the given clock (e.g. the exchange's server time) or the local one."""
    if now_ms is not None:
        return ms_to_datetime(now_ms).date()
    return datetime.now(UTC).date()
