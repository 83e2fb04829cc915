"""The daily archive statistics: open interest / long-short `metrics` and order book `bookDepth`.

Both exist only in data.binance.vision's daily files (no REST history), so per (symbol, day):
1. before listing / after delisting / not begun -> ledger `out_of_range`, nothing fetched;
2. the day's file (sha256 verified) parsed by binance/market_stats.py: a changed layout or a row for
   another symbol fails the day naming the file; rows out of order are sorted and exact duplicates
   dropped, each correction reported (`corrections`, shown in the run's metadata);
3. what the file lacks (metrics: 5-minute stamps of the day; bookDepth: stretches over 90 s without a
   snapshot) is recorded in the ledger as `exchange_gap` (there is no other source to fill it from);
4. rows and the ledger row in one transaction; a file not published yet leaves the day `incomplete`.

`check_day` compares the store with the ledger: rows lost since the load, or missing stretches the
load did not record, fail (fillable: a re-run reloads the file); recorded archive gaps only warn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from marketdata_assets.binance.archive import ArchiveClient, archive_path
from marketdata_assets.binance.exchange_info import SymbolInfo
from marketdata_assets.binance.intervals import DAY_MS, day_start_ms
from marketdata_assets.binance.market_stats import (
    BOOK_DEPTH_STEP_MS,
    METRICS_STEP_MS,
    ParsedDay,
    parse_book_depth_csv,
    parse_metrics_csv,
)
from marketdata_assets.binance.rest import BinanceRestClient
from marketdata_assets.ingest.base import ExchangeLoader
from marketdata_assets.ingest.contract import DayResult
from marketdata_assets.ingest.days import day_closed, failed_result, load_each_day, out_of_range_result, traded_window
from marketdata_assets.storage.ledger import CheckStatus, DayStatus, LedgerRow, LedgerStatus
from marketdata_assets.storage.market_stats_store import MarketStatsStore
from marketdata_assets.storage.tables_market_stats import book_depth, open_interest_metrics
from marketdata_assets.validation.gaps import EXCHANGE_GAP, Stretch

BOOK_DEPTH_MAX_GAP_MS = 3 * BOOK_DEPTH_STEP_MS  # "about 30 s": a stretch over 90 s without one is a gap


@dataclass(frozen=True)
class StatsDataset:
    """What differs between metrics and bookDepth; the load and the check are the same."""

    name: str            # ledger dataset and asset name
    data_type: str       # archive family
    table: sa.Table
    time_column: str
    closed_right: bool   # metrics are stamped at the interval's end: (00:00, 24:00]
    step_ms: int         # nominal spacing of the rows' times


METRICS = StatsDataset("metrics", "metrics", open_interest_metrics, "create_time", True, METRICS_STEP_MS)
BOOK_DEPTH = StatsDataset("book_depth", "bookDepth", book_depth, "snapshot_time", False, BOOK_DEPTH_STEP_MS)
DATASETS = {d.name: d for d in (METRICS, BOOK_DEPTH)}


def window(dataset: StatsDataset, info: SymbolInfo, day: date, now_ms: int) -> tuple[int, int]:
    """The part of the day the symbol traded and that has passed: [lo, hi) (metrics: (lo, hi])."""
    return traded_window(info, day, now_ms)


def expected_times(dataset: StatsDataset, lo: int, hi: int) -> list[int]:
    """Nominal stamps of a window: metrics every 5 min in (lo, hi]; bookDepth every 30 s in [lo, hi)."""
    step = dataset.step_ms
    if dataset.closed_right:
        first = (lo // step + 1) * step
        return list(range(first, hi + 1, step))
    first = -(-lo // step) * step
    return list(range(first, hi, step))


def missing_ranges(dataset: StatsDataset, times: Sequence[int], lo: int, hi: int) -> list[tuple[int, int]]:
    """[start, end) stretches of the window without rows.

    metrics: each missing 5-minute stamp t is the range [t, t + 1) (runs merged); bookDepth: any stretch
    over BOOK_DEPTH_MAX_GAP_MS between snapshots (or from the window's edges) is missing.
    """
    if dataset.closed_right:
        have = set(times)
        out: list[tuple[int, int]] = []
        for t in expected_times(dataset, lo, hi):
            if t in have:
                continue
            if out and out[-1][1] == t - dataset.step_ms + 1:
                out[-1] = (out[-1][0], t + 1)
            else:
                out.append((t, t + 1))
        return out
    edges = [lo - 1, *sorted(times), hi]
    # from the window's start, the first snapshot may come up to one step late; to its end likewise
    return [(a + 1, b) for a, b in zip(edges, edges[1:], strict=False) if b - a > BOOK_DEPTH_MAX_GAP_MS]


class StatsLoader(ExchangeLoader):
    """Loads one of DATASETS (`dataset=`) day by day from the daily archive; see the module docstring."""

    def __init__(self, engine: Engine, rest: BinanceRestClient, archive: ArchiveClient | None, *,
                 dataset: StatsDataset | str, symbols: dict[str, SymbolInfo] | None = None,
                 now_ms: Callable[[], int] | None = None) -> None:
        super().__init__(rest, archive, symbols=symbols, now_ms=now_ms)
        self.spec = DATASETS[dataset] if isinstance(dataset, str) else dataset
        self.dataset = self.spec.name
        self.store = MarketStatsStore(engine)

    def load(self, symbol: str, days: Sequence[date]) -> list[DayResult]:
        info = self.symbol_info(symbol)
        return load_each_day(symbol, days, lambda day: self._load_day(info, day),
                             lambda day, error: self._record(failed_result(self.dataset, symbol, day, error)))

    def _record(self, result: DayResult, rows: Sequence[dict] = ()) -> DayResult:
        """The day's rows and its ledger row, in one transaction."""
        self.store.write(self.spec.table, rows, [result.ledger_row()])
        return result

    def _load_day(self, info: SymbolInfo, day: date) -> DayResult:
        ds, symbol = self.spec, info.symbol
        now = self.now_ms()
        lo, hi = window(ds, info, day, now)
        if hi <= lo:
            return self._record(out_of_range_result(ds.name, symbol, day))
        path = archive_path(ds.data_type, symbol, day)
        result = DayResult(dataset=ds.name, symbol=symbol, interval="", day=day, status=DayStatus.INCOMPLETE)
        got = self.archive.fetch(path) if self.archive is not None else None
        if got is None:
            result.error = f"{path}: not published yet (the archive is the only source of {ds.data_type})"
            result.expected_rows = len(expected_times(ds, lo, hi))
            result.gaps = [Stretch(lo, hi, EXCHANGE_GAP)]
            return self._record(result)
        parsed = self._parse(got.csv_bytes, path, symbol, day)
        result.archive_checksum = got.sha256
        result.corrections = parsed.corrections
        times = sorted({row[ds.time_column] for row in parsed.rows})
        result.stored_rows = len(parsed.rows)
        bands = (len(parsed.rows) // len(times)) if times and not ds.closed_right else 0
        result.details.update(stamps=len(times), bands=bands)
        result.gaps = [Stretch(a, b, EXCHANGE_GAP) for a, b in missing_ranges(ds, times, lo, hi)]
        result.expected_rows = len(expected_times(ds, lo, hi)) * max(bands, 1)
        result.sources = {"archive": result.stored_rows} if result.stored_rows else {}
        if day_closed(info, day, now):
            result.status = DayStatus.COMPLETE
        if result.gaps:
            result.notes.append(f"{path}: {len(result.gaps)} stretch(es) without rows, recorded as archive gaps")
        return self._record(result, [{**row, "symbol": symbol, "source": "archive"} for row in parsed.rows])

    def _parse(self, data: bytes, path: str, symbol: str, day: date) -> ParsedDay:
        if self.spec is METRICS:
            return parse_metrics_csv(data, path, symbol, day_start_ms(day))
        return parse_book_depth_csv(data, path, day_start_ms(day))


def check_day(dataset: StatsDataset, store: MarketStatsStore, symbol: str, day: date, ledger: LedgerRow | None,
              lo: int, hi: int) -> tuple[str, str, dict]:
    """(status "passed" | "warning" | "failed", description, metadata) of one stored day against its ledger.

    [lo, hi) is the day's window (`window()`: listing, delisting and now clip it).
    """
    if ledger is None:
        return CheckStatus.FAILED, "never loaded: no ledger entry for this day", {"never_loaded": True}
    if ledger.status == LedgerStatus.FAILED:
        return CheckStatus.FAILED, f"the last load failed: {ledger.last_error}", {"last_error": ledger.last_error}
    if ledger.status == LedgerStatus.OUT_OF_RANGE or hi <= lo:
        return CheckStatus.PASSED, "out of range (before listing, after delisting or in the future)", {}
    if ledger.actual_rows == 0 and ledger.last_error:
        return CheckStatus.FAILED, ledger.last_error, {"stored_rows": 0, "expected_rows": ledger.expected_rows}
    start = day_start_ms(day)
    counts = store.time_counts(dataset.table, dataset.time_column, symbol, start, start + DAY_MS,
                               closed_right=dataset.closed_right)
    rows = sum(n for _, n in counts)
    recorded = [(int(g["start_ms"]), int(g["end_ms"])) for g in ledger.missing or [] if "start_ms" in g]
    found = missing_ranges(dataset, [t for t, _ in counts], lo, hi)
    new = [r for r in found if not any(a <= r[0] and r[1] <= b for a, b in recorded)]
    bands = max((n for _, n in counts), default=0)
    short = [t for t, n in counts if n < bands] if not dataset.closed_right else []
    meta = {"stored_rows": rows, "loaded_rows": ledger.actual_rows, "expected_rows": ledger.expected_rows,
            "archive_gaps": len(recorded), "missing_stretches": len(new), "incomplete_snapshots": len(short)}
    problems = []
    if rows < ledger.actual_rows:
        problems.append(f"{ledger.actual_rows - rows} of {ledger.actual_rows} loaded row(s) missing")
    if new:
        problems.append(f"{len(new)} stretch(es) without rows that the archive file had")
    if short:
        problems.append(f"{len(short)} snapshot(s) missing bands")
    if problems:
        return CheckStatus.FAILED, "; ".join(problems) + ": the repair re-runs this partition", meta
    if recorded:
        return CheckStatus.WARNING, (f"{rows} row(s); the archive file lacks {len(recorded)} stretch(es) "
                           "(no other source: nothing to repair)"), meta
    return CheckStatus.PASSED, f"{rows} row(s), none missing", meta
