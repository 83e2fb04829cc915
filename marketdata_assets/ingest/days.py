"""The day bookkeeping every loader shares: which part of a day can have data, and failing one day.

Why one place: each loader used to write its own window (listing, delisting, the exchange's now), its own
out-of-range result and its own "this day failed" handling; they must agree, or the same day reads
differently in two datasets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from marketdata_assets.binance.errors import BinanceError, InvalidSymbolError, PayloadFormatError
from marketdata_assets.binance.exchange_info import SymbolInfo
from marketdata_assets.binance.intervals import DAY_MS, InvalidInputError, day_start_ms
from marketdata_assets.ingest.contract import DayResult
from marketdata_assets.storage.ledger import DayStatus
from marketdata_assets.validation.errors import KlineValidationError

#: what goes wrong with one day (after the clients' retries): the day fails, the others load
DAY_ERRORS: tuple[type[Exception], ...] = (BinanceError, PayloadFormatError, KlineValidationError)


def traded_window(info: SymbolInfo, day: date, now_ms: int) -> tuple[int, int]:
    """[lo, hi): the part of the UTC day the symbol was listed and that has passed (hi <= lo: none)."""
    start = day_start_ms(day)
    end = start + DAY_MS
    return max(start, info.onboard_ms or start), min(end, info.delivery_ms or end, now_ms)


def day_closed(info: SymbolInfo, day: date, now_ms: int) -> bool:
    """No more data can come for the day: it is over, or the symbol was delivered (delisted) by now."""
    end = day_start_ms(day) + DAY_MS
    return end <= now_ms or (info.delivery_ms is not None and info.delivery_ms <= now_ms)


def describe(exc: BaseException) -> str:
    """The cause as a result's `error` (the exception's own message names the file or request)."""
    return f"{type(exc).__name__}: {exc}"


def load_each_day(
    symbol: str,
    days: Sequence[date],
    load_day: Callable[[date], DayResult],
    failed: Callable[[date, str], DayResult],
    progress: Callable[[DayResult], None] | None = None,
) -> list[DayResult]:
    """`load_day` for each day in order; a day raising one of DAY_ERRORS becomes `failed(day, error)`
    (which records it). `progress` sees each result as it is done.

    An unknown symbol found only now (the exchange refused it) is bad input, not a failed day.
    """
    results = []
    for day in sorted(set(days)):
        try:
            result = load_day(day)
        except InvalidSymbolError as exc:
            raise InvalidInputError(f"{symbol}: {exc}") from exc
        except DAY_ERRORS as exc:
            result = failed(day, describe(exc))
        if progress:
            progress(result)
        results.append(result)
    return results


def failed_result(dataset: str, symbol: str, day: date, error: str, interval: str = "") -> DayResult:
    return DayResult(dataset=dataset, symbol=symbol, interval=interval, day=day, status=DayStatus.FAILED, error=error)


def out_of_range_result(dataset: str, symbol: str, day: date, interval: str = "") -> DayResult:
    return DayResult(dataset=dataset, symbol=symbol, interval=interval, day=day, status=DayStatus.OUT_OF_RANGE)
