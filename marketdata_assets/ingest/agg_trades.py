"""The aggregate-trade load: (symbol, day) -> every trade of the day stored once, with its ledger row.

Per day:
1. before listing / after delisting / not begun -> ledger `out_of_range`, nothing fetched;
2. a closed day: the archive's daily file (sha256 verified), normalised (binance/agg_trades.py: sorted
   by id, exact duplicates dropped, each correction reported); otherwise REST for the whole day;
3. id continuity is the gap check: the day's first id (REST, first trade at/after 00:00) and last id
   (REST `fromId` = last + 1 must be the next day's) bound the day, and every missing id inside is asked
   of REST by `fromId`. What REST does not return either is recorded as an exchange gap.
Rows and the ledger row go to the store in one transaction per day, so a day is never marked complete
without its rows. The ledger's expected_rows is last id - first id + 1: a later check compares with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date

import numpy as np
from sqlalchemy.engine import Engine

from marketdata_assets.binance.agg_trades import (
    AggTradeBatch,
    id_holes,
    parse_agg_trades_csv,
    rest_agg_trades_csv,
)
from marketdata_assets.binance.archive import ArchiveClient, archive_path
from marketdata_assets.binance.errors import BinanceError
from marketdata_assets.binance.exchange_info import SymbolInfo
from marketdata_assets.binance.intervals import DAY_MS, day_start_ms
from marketdata_assets.binance.rest import AGG_TRADES_MAX_LIMIT, AGG_TRADES_MAX_SPAN_MS, BinanceRestClient
from marketdata_assets.ingest.base import ExchangeLoader
from marketdata_assets.ingest.contract import DayResult
from marketdata_assets.ingest.days import day_closed, failed_result, load_each_day, out_of_range_result, traded_window
from marketdata_assets.storage.agg_trades_store import AggTradeStore
from marketdata_assets.storage.ledger import DayStatus, LedgerRow, LedgerStatus
from marketdata_assets.validation.gaps import EXCHANGE_GAP, IdGap

log = logging.getLogger(__name__)

DATASET = "agg_trades"


class AggTradeLoader(ExchangeLoader):
    """Loads aggregate trades day by day; see the module docstring for the rules."""

    dataset = DATASET

    def __init__(self, engine: Engine, rest: BinanceRestClient, archive: ArchiveClient | None, *,
                 symbols: dict[str, SymbolInfo] | None = None, now_ms: Callable[[], int] | None = None) -> None:
        super().__init__(rest, archive, symbols=symbols, now_ms=now_ms)
        self.store = AggTradeStore(engine)

    def load(self, symbol: str, days: Sequence[date],
             progress: Callable[[DayResult], None] | None = None) -> list[DayResult]:
        info = self.symbol_info(symbol)

        def failed(day: date, error: str) -> DayResult:
            result = failed_result(DATASET, symbol, day, error)
            self.store.write([], [result.ledger_row()])
            return result

        return load_each_day(symbol, days, lambda day: self._load_day(info, day), failed, progress)

    def _load_day(self, info: SymbolInfo, day: date) -> DayResult:
        symbol = info.symbol
        now = self.now_ms()
        start = day_start_ms(day)
        lo, hi = traded_window(info, day, now)
        if hi <= lo:
            result = out_of_range_result(DATASET, symbol, day)
            self.store.write([], [result.ledger_row()])
            return result
        closed = day_closed(info, day, now)
        result = DayResult(dataset=DATASET, symbol=symbol, interval="", day=day,
                           status=DayStatus.COMPLETE if closed else DayStatus.INCOMPLETE)
        batches: list[AggTradeBatch] = []
        archived = self._archive_day(symbol, day, (start, start + DAY_MS), result) if closed else None
        if archived is None:
            rows = list(self.rest.agg_trades_range(symbol, lo, hi))
            batches.append(rest_agg_trades_csv(rows, symbol))
        else:
            batches.append(archived)
            first, last = self._day_bounds(symbol, lo, hi, archived)
            holes = id_holes(archived.ids, first, last)
            for a, b in holes:
                filled = rest_agg_trades_csv(self._rest_ids(symbol, a, b), symbol)
                if len(filled):
                    batches.append(filled)
            filled_rows = sum(len(b) for b in batches[1:])
            if filled_rows:
                result.notes.append(f"{filled_rows} trade(s) missing from the archive file filled from REST")
        ids = np.sort(np.concatenate([b.ids for b in batches])) if batches else np.empty(0, np.int64)
        if ids.size:
            first_id, last_id = int(ids[0]), int(ids[-1])
            result.details.update(first_id=first_id, last_id=last_id)
            result.gaps = [IdGap(a, b, EXCHANGE_GAP) for a, b in id_holes(ids)]
            result.expected_rows = last_id - first_id + 1
        result.stored_rows = int(ids.size)
        for batch in batches:
            if len(batch):
                result.sources[batch.source] = result.sources.get(batch.source, 0) + len(batch)
        self.store.write(batches, [result.ledger_row()])
        return result

    def _archive_day(self, symbol: str, day: date, day_range: tuple[int, int],
                     result: DayResult) -> AggTradeBatch | None:
        if self.archive is None:
            return None
        path = archive_path("aggTrades", symbol, day)
        try:
            got = self.archive.fetch(path)
        except BinanceError as exc:
            result.notes.append(f"archive unusable ({type(exc).__name__}: {exc}): loaded from REST")
            return None
        if got is None:
            result.notes.append("archive file not published yet: loaded from REST")
            return None
        batch = parse_agg_trades_csv(got.csv_bytes, symbol, name=path, day_range=day_range)
        result.archive_checksum = got.sha256
        result.corrections += batch.corrections
        return batch

    def _day_bounds(self, symbol: str, lo: int, hi: int, archived: AggTradeBatch) -> tuple[int | None, int | None]:
        """The day's first and last id as REST knows them (None when REST has no trade there)."""
        first = None
        window = lo
        while window < hi and first is None:
            end = min(window + AGG_TRADES_MAX_SPAN_MS - 1, hi - 1)
            page = self.rest.agg_trades(symbol, start_ms=window, end_ms=end, limit=1)
            first = int(page[0]["a"]) if page else None
            window = end + 1
            if archived.ids.size and first is None and window > int(archived.times[0]):
                break  # the archive's first trade comes before any REST found: take the archive's
        last = int(archived.ids[-1]) if archived.ids.size else None
        probe_from = (last + 1) if last is not None else first
        limit = 1  # normally the next trade is already the next day's: one cheap probe
        while probe_from is not None:
            page = self.rest.agg_trades(symbol, from_id=probe_from, limit=limit)
            inside = [int(t["a"]) for t in page if int(t["T"]) < hi]
            if inside:
                last = max(inside)
            if len(inside) < len(page) or len(page) < limit:
                break
            probe_from, limit = last + 1, AGG_TRADES_MAX_LIMIT
        return first, last

    def _rest_ids(self, symbol: str, first: int, last: int) -> list[dict]:
        """Trades with ids in [first, last] by fromId pages."""
        out: list[dict] = []
        cursor = first
        while cursor <= last:
            page = self.rest.agg_trades(symbol, from_id=cursor, limit=AGG_TRADES_MAX_LIMIT)
            out += [t for t in page if int(t["a"]) <= last]
            if len(page) < AGG_TRADES_MAX_LIMIT:
                break
            cursor = int(page[-1]["a"]) + 1
        return out


def check_day(store: AggTradeStore, symbol: str, day: date, ledger: LedgerRow | None) -> tuple[bool, str, dict]:
    """Id continuity of a stored day: (passed, description, metadata).

    Fails when the day was never loaded or its load failed, when ids inside the day are missing, when the
    day holds fewer trades than its load counted (the day's first to last id as REST bounds them, less
    recorded exchange gaps).
    """
    if ledger is None:
        return False, "never loaded: no ledger entry for this day", {"never_loaded": True}
    if ledger.status == LedgerStatus.FAILED:
        return False, f"the last load failed: {ledger.last_error}", {"last_error": ledger.last_error}
    if ledger.status == LedgerStatus.OUT_OF_RANGE:
        return True, "out of range (before listing, after delisting or in the future)", {}
    rows, first, last = store.day_stats(symbol, day)
    exchange_gaps = sum(int(g["end_id"]) - int(g["start_id"]) + 1 for g in ledger.missing or [] if "end_id" in g)
    expected = ledger.expected_rows - exchange_gaps
    inside = (last - first + 1 - exchange_gaps) if rows else 0
    meta = {"stored_rows": rows, "expected_rows": expected, "first_id": first, "last_id": last,
            "missing_inside": max(inside - rows, 0)}
    problems = []
    if rows < expected:
        problems.append(f"{expected - rows} of {expected} trade(s) missing (fillable)")
    if rows and inside > rows:
        problems.append(f"{inside - rows} id(s) missing between {first} and {last}")
    if problems:
        return False, "; ".join(problems) + ": the repair re-runs this partition", meta
    return True, f"{rows} trade(s), ids continuous", meta
