"""BinanceRestClient: the USD-M Futures REST API (SPEC A) with weight budgeting, retries and pagination.

Why one place: every REST call must ask the shared `WeightBudget` first, sync it from the server's
`X-MBX-USED-WEIGHT-1M`, back off on 429 and wait out (or refuse) a 418 ban, so that no caller can
get the IP banned. Inputs are validated before any request; answers are plain Python data, and klines
come back as `RawKlines` (exact decimal text in the archive layout).
"""

from __future__ import annotations

import calendar
import logging
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from marketdata_assets.binance.breaker import shared_breaker
from marketdata_assets.binance.errors import (
    BinanceError,
    BinanceServerError,
    BinanceUnavailableError,
    IPBannedError,
    RateLimitedError,
    describe_request,
    error_from_response,
)
from marketdata_assets.binance.exchange_info import SymbolInfo, parse_exchange_info, trading_perpetuals
from marketdata_assets.binance.intervals import (
    DAY_MS,
    INTERVAL_MS,
    InvalidInputError,
    expected_open_times,
    ms_to_datetime,
    validate_rest_interval,
    validate_symbol,
)
from marketdata_assets.binance.kline_kinds import KLINE_KINDS
from marketdata_assets.binance.kline_pages import ascending_unique, page_rows
from marketdata_assets.binance.klines import KlineFormatError, RawKlines
from marketdata_assets.binance.ratelimit import WEIGHT_HEADER, Sleep, WeightBudget, shared_budget
from marketdata_assets.binance.retry import TRANSIENT_EXCEPTIONS, RetryPolicy, describe_failure, is_transient_status
from marketdata_assets.binance.tls import tls_for

if TYPE_CHECKING:
    from marketdata_assets.settings import Settings

log = logging.getLogger(__name__)

LIVE_BASE_URL = "https://fapi.binance.com"
MAX_KLINE_LIMIT = 1500
# Weight 2 buys up to 499 bars: the cheapest weight per candle (SPEC A.3).
KLINE_PAGE_LIMIT = 499
DEPTH_WEIGHTS = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}
FUNDING_PAGE_LIMIT = 1000
AGG_TRADES_MAX_LIMIT = 1000
AGG_TRADES_WEIGHT = 20
AGG_TRADES_MAX_SPAN_MS = 3_600_000
WEEK_MS = 7 * DAY_MS
_WEEK_GRID_OFFSET_MS = 4 * DAY_MS  # weekly bars open on Mondays; 1970-01-05 was a Monday
# A bar that closed this long before the estimated server time is closed for sure (no /time call).
_CLOSED_MARGIN_MS = 3_600_000


def kline_weight(limit: int) -> int:
    """Request weight of /fapi/v1/klines (and variants) for a `limit` (SPEC A.3)."""
    if not 1 <= limit <= MAX_KLINE_LIMIT:
        raise InvalidInputError(f"kline limit {limit} out of range: expected 1..{MAX_KLINE_LIMIT}")
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


def next_open_ms(open_ms: int, interval: str) -> int:
    """Open time of the bar after the one opening at `open_ms` (calendar months for 1M)."""
    if interval == "1M":
        moment = ms_to_datetime(open_ms)
        year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000
    return open_ms + interval_step_ms(interval)


def interval_step_ms(interval: str) -> int:
    """Nominal length of a bar (31 days for 1M: an upper bound, only used for planning)."""
    if interval in INTERVAL_MS:
        return INTERVAL_MS[interval]
    return {"3d": 3 * DAY_MS, "1w": WEEK_MS, "1M": 31 * DAY_MS}[interval]


def estimate_bars(interval: str, start_ms: int, end_ms: int) -> int:
    """Upper bound of the bars opening in [start_ms, end_ms) (exact for the intra-day grid)."""
    if end_ms <= start_ms:
        return 0
    if interval in INTERVAL_MS:
        return len(expected_open_times(interval, start_ms, end_ms))
    if interval == "1w":
        return len(range(-(-(start_ms - _WEEK_GRID_OFFSET_MS) // WEEK_MS) * WEEK_MS + _WEEK_GRID_OFFSET_MS,
                         end_ms, WEEK_MS))
    if interval == "1M":
        first, last = ms_to_datetime(start_ms), ms_to_datetime(end_ms - 1)
        return (last.year - first.year) * 12 + last.month - first.month + 1
    return (end_ms - start_ms) // interval_step_ms(interval) + 1


def _last_line(csv: bytes) -> bytes:
    """The last line of newline-terminated CSV, its newline included."""
    return csv[csv.rfind(b"\n", 0, len(csv) - 1) + 1 :]


def _close_time(line: bytes) -> int:
    return int(line.split(b",", 7)[6])


def kline_page_limit(interval: str, start_ms: int, end_ms: int) -> int:
    """The `limit` of the next page: the fewest bars that cover the range, at most 499 (weight <= 2)."""
    return min(KLINE_PAGE_LIMIT, max(1, estimate_bars(interval, start_ms, end_ms)))


def page_windows(interval: str, start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """[start, end) cut into windows of one full page each (KLINE_PAGE_LIMIT bars on a fixed grid: any
    half-open span of 499 steps holds exactly 499 open times); one window for 1M, whose months vary."""
    if interval == "1M" or end_ms <= start_ms:
        return [(start_ms, end_ms)]
    span = KLINE_PAGE_LIMIT * interval_step_ms(interval)
    return [(lo, min(lo + span, end_ms)) for lo in range(start_ms, end_ms, span)]


def depth_weight(limit: int) -> int:
    try:
        return DEPTH_WEIGHTS[limit]
    except KeyError:
        raise InvalidInputError(
            f"depth limit {limit!r} is not valid: expected one of {', '.join(map(str, DEPTH_WEIGHTS))}"
        ) from None


def _validate_range(start_ms: int, end_ms: int) -> None:
    for name, value in (("start_ms", start_ms), ("end_ms", end_ms)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInputError(f"{name}={value!r} is not a non-negative epoch time in ms")
    if end_ms < start_ms:
        raise InvalidInputError(
            f"end_ms={end_ms} ({ms_to_datetime(end_ms).isoformat()}) is before "
            f"start_ms={start_ms} ({ms_to_datetime(start_ms).isoformat()})"
        )


def perpetual_symbols(exchange_info: Mapping[str, Any]) -> list[SymbolInfo]:
    """The tradable USD-M perpetuals (status TRADING, contractType PERPETUAL) with listing/delisting times."""
    symbols = parse_exchange_info(dict(exchange_info))
    return [symbols[name] for name in trading_perpetuals(symbols)]


class BinanceRestClient:
    """Pooled, budgeted, retrying client of fapi (or of the simulator). Thread-safe; close() when done."""

    def __init__(self, base_url: str = LIVE_BASE_URL, api_key: str | None = None, timeout: float = 10.0,
                 max_retries: int = 5, budget: WeightBudget | None = None, max_ban_wait_s: float = 300,
                 sleep: Sleep = time.sleep, *, backoff_base_s: float = 0.2, backoff_cap_s: float = 10.0,
                 server_time_ttl_s: float = 600.0, max_connections: int = 20, page_workers: int = 4) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.budget = budget if budget is not None else shared_budget(self.base_url)
        self.breaker = shared_breaker(self.base_url)
        self.max_ban_wait_s = max_ban_wait_s
        # kline pages of one call asked at once (a loader's days run in parallel too: keep the product
        # under max_connections)
        self.page_workers = max(1, page_workers)
        self._sleep = sleep
        self._policy = RetryPolicy(max_retries, backoff_base_s, backoff_cap_s)
        self._server_time_ttl_ms = int(server_time_ttl_s * 1000)
        self._offset: tuple[int, int] | None = None  # (server - local ms, measured at local ms)
        headers = {"User-Agent": "marketdata/0.1", "Accept": "application/json"}
        if api_key:
            headers["X-MBX-APIKEY"] = api_key
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            verify=tls_for(self.base_url),
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> BinanceRestClient:
        return cls(base_url=settings.fapi_url, api_key=settings.api_key, **kwargs)

    def __repr__(self) -> str:
        key = "***" if self._api_key else None
        return f"BinanceRestClient(base_url={self.base_url!r}, api_key={key!r})"

    def __enter__(self) -> BinanceRestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ transport

    def _get(self, path: str, params: Mapping[str, Any] | None = None, weight: int = 1, *,
             funding: bool = False, raw: bool = False) -> Any:
        """One logical GET: budget, send, sync weight, retry what is transient, type what is not.
        The decoded JSON, or with `raw` the body's bytes (kline pages: binance/kline_pages.py)."""
        url = str(httpx.URL(self.base_url + path, params=params))
        attempts = self._policy.max_retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            self._refuse_long_ban(url)
            self.breaker.before(url)
            started = self.breaker.now()
            if funding:
                self.budget.funding.acquire(self._sleep)
            self.budget.acquire(weight, self._sleep)
            sent_at = self.budget.now_ms()
            try:
                response = self._http.get(path, params=params)
            except TRANSIENT_EXCEPTIONS as exc:
                self.budget.release(weight, sent_at)
                self.breaker.failure(describe_failure(exc), started)
                if last:
                    raise BinanceUnavailableError(
                        f"no answer after {attempts} attempts ({describe_failure(exc)})", url
                    ) from exc
                delay = self._policy.delay(attempt)
                log.warning("%s: %s; retry %d in %.2f s", path, describe_failure(exc), attempt + 1, delay)
                self._sleep(delay)
                continue
            except BaseException:
                self.budget.release(weight, sent_at)
                raise
            self.budget.observe(response.headers.get(WEIGHT_HEADER), sent_at)
            status = response.status_code
            if is_transient_status(status):
                self.breaker.failure(f"HTTP {status}", started)
            else:
                self.breaker.success()
            if 200 <= status < 300:
                self.budget.release(weight, sent_at)
                return response.content if raw else self._decode(response, url)
            error = error_from_response(status, response.content, response.headers, url)
            now = self.budget.now_ms()
            if isinstance(error, IPBannedError):
                try:
                    self._handle_ban(error, now, last)  # the penalty is in place before anyone else sends
                finally:
                    self.budget.release(weight, sent_at)
                continue
            if isinstance(error, RateLimitedError):
                until = now + int(error.retry_after * 1000) if error.retry_after is not None \
                    else self.budget.next_window_ms()
                self.budget.penalise(until)
                self.budget.release(weight, sent_at)
                if last:
                    raise error
                log.warning("%s: 429 rate limited; every request waits %.1f s", path, (until - now) / 1000)
                continue
            self.budget.release(weight, sent_at)
            if is_transient_status(status):
                if last:
                    raise BinanceServerError(status, error.code, f"{error.msg} (after {attempts} attempts)",
                                             url) from error
                delay = self._policy.delay(attempt)
                log.warning("%s: HTTP %d; retry %d in %.2f s", path, status, attempt + 1, delay)
                self._sleep(delay)
                continue
            raise error
        raise AssertionError("unreachable")

    def _refuse_long_ban(self, url: str) -> None:
        """Never send (and extend the ban) while a ban longer than max_ban_wait_s is running."""
        until = self.budget.banned_until_ms
        if until is None:
            return
        wait_s = (until - self.budget.now_ms()) / 1000
        if wait_s > self.max_ban_wait_s:
            raise IPBannedError(
                418, -1003,
                f"IP banned by Binance until {ms_to_datetime(until).isoformat()} ({wait_s:.0f} s from now, more "
                f"than max_ban_wait_s={self.max_ban_wait_s:g}); request not sent",
                url, banned_until_ms=until,
            )

    def _handle_ban(self, error: IPBannedError, now: int, last: bool) -> None:
        """Wait out a short ban (through the shared budget, so every thread waits); refuse a long one."""
        until = error.banned_until_ms
        if until is None and error.retry_after is not None:
            until = now + int(error.retry_after * 1000)
        if until is None:
            until = now + 120_000  # the shortest ban Binance gives (SPEC A.1)
        wait_s = max(0.0, (until - now) / 1000)
        self.budget.penalise(until, banned=True)
        if wait_s > self.max_ban_wait_s or last:
            reason = (f"more than max_ban_wait_s={self.max_ban_wait_s:g}" if wait_s > self.max_ban_wait_s
                      else "and no retries left")
            raise IPBannedError(
                error.status, error.code,
                f"IP banned by Binance until {ms_to_datetime(until).isoformat()} ({wait_s:.0f} s from now, "
                f"{reason}); stop every client on this IP until then. Server said: {error.msg}",
                error.url, banned_until_ms=until, retry_after=error.retry_after,
            ) from error
        log.warning("%s: 418 IP banned; every request waits %.0f s", error.request, wait_s)

    @staticmethod
    def _decode(response: httpx.Response, url: str) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise BinanceError(
                f"{describe_request(url)}: HTTP {response.status_code} with a body that is "
                f"not JSON: {response.content[:120]!r}"
            ) from None

    # ------------------------------------------------------------------ simple endpoints

    def ping(self) -> None:
        self._get("/fapi/v1/ping")

    def server_time_ms(self) -> int:
        local_before = int(time.time() * 1000)
        server = int(self._get("/fapi/v1/time")["serverTime"])
        self._offset = (server - local_before, local_before)
        return server

    def exchange_info(self) -> dict[str, Any]:
        return self._get("/fapi/v1/exchangeInfo")

    def perpetual_symbols(self, exchange_info: Mapping[str, Any] | None = None) -> list[SymbolInfo]:
        return perpetual_symbols(exchange_info if exchange_info is not None else self.exchange_info())

    def premium_index(self, symbol: str | None = None) -> dict[str, Any] | list[dict[str, Any]]:
        """Mark/index price and funding: an object for one symbol (weight 1), a list for all (weight 10)."""
        if symbol is None:
            return self._get("/fapi/v1/premiumIndex", None, 10)
        return self._get("/fapi/v1/premiumIndex", {"symbol": validate_symbol(symbol)}, 1)

    def ticker_24hr(self, symbol: str | None = None) -> dict[str, Any] | list[dict[str, Any]]:
        """Rolling 24 h statistics: weight 1 for one symbol, 40 for all."""
        if symbol is None:
            return self._get("/fapi/v1/ticker/24hr", None, 40)
        return self._get("/fapi/v1/ticker/24hr", {"symbol": validate_symbol(symbol)}, 1)

    def depth(self, symbol: str, limit: int = 1000) -> dict[str, Any]:
        """Order book snapshot (`lastUpdateId`, bids, asks); limit one of 5,10,20,50,100,500,1000."""
        weight = depth_weight(limit)
        return self._get("/fapi/v1/depth", {"symbol": validate_symbol(symbol), "limit": limit}, weight)

    # ------------------------------------------------------------------ klines

    def klines(self, symbol: str, interval: str, start_ms: int, end_ms: int, *, include_open: bool = False,
               kind: str = "klines") -> RawKlines:
        """Every bar opening in [start_ms, end_ms), ascending and unique, paged at the cheapest weight.

        Pages go forward from `startTime = last open + interval`; the API skips data gaps by itself, so a
        page shorter than its limit (with endTime sent) means nothing more exists up to end_ms. The bar
        still in progress is left out unless `include_open`.
        """
        validate_symbol(symbol)
        validate_rest_interval(interval)
        if kind not in KLINE_KINDS:
            raise InvalidInputError(f"unknown kline kind {kind!r}: expected one of {', '.join(KLINE_KINDS)}")
        _validate_range(start_ms, end_ms)
        windows = page_windows(interval, start_ms, end_ms)
        if len(windows) == 1 or self.page_workers == 1:
            pages = self._kline_range(symbol, interval, kind, start_ms, end_ms)
        else:
            # the pages of a long range are known in advance: ask them at once, the weight budget (not the
            # page count) being the limit; each window is still paged on its own should a page come back full
            with ThreadPoolExecutor(min(self.page_workers, len(windows)), thread_name_prefix="kline-page") as pool:
                pages = [page for window in pool.map(lambda w: self._kline_range(symbol, interval, kind, *w), windows)
                         for page in window]
        csv = ascending_unique(pages)
        if csv and not include_open:
            csv = self._closed_only(csv)
        return RawKlines(symbol, interval, "rest", csv)

    def _kline_range(self, symbol: str, interval: str, kind: str, start_ms: int, end_ms: int) -> list[RawKlines]:
        """The pages of bars opening in [start_ms, end_ms), in order, paged forward (see `klines`)."""
        path = f"/fapi/v1/{kind}"
        pages: list[RawKlines] = []
        cursor = start_ms
        while cursor < end_ms:
            limit = kline_page_limit(interval, cursor, end_ms)
            params = {KLINE_KINDS[kind].instrument_param: symbol, "interval": interval, "startTime": cursor,
                      "endTime": end_ms - 1, "limit": limit}
            body = self._get(path, params, kline_weight(limit), raw=True)
            try:
                page = page_rows(body, symbol, interval)
            except KlineFormatError as exc:
                raise BinanceError(f"{path} {symbol} {interval}: {exc}") from None
            sent = page.open_times_ms
            pages.append(page.select(start_ms, end_ms))
            if len(sent) < limit:
                break
            following = next_open_ms(max(sent), interval)
            if following <= cursor:
                break  # no progress: never loop on a misbehaving server
            cursor = following
        return pages

    def _closed_only(self, csv: bytes) -> bytes:
        """Drop the bar still in progress (close_time not yet past the server's clock)."""
        estimate, fresh = self._estimated_server_now_ms()
        if _close_time(_last_line(csv)) < estimate - _CLOSED_MARGIN_MS:
            return csv
        now = estimate if fresh else self.server_time_ms()
        while csv and _close_time(last := _last_line(csv)) >= now:
            csv = csv[: len(csv) - len(last)]
        return csv

    def _estimated_server_now_ms(self) -> tuple[int, bool]:
        """(server clock estimate, whether it was just measured); /time is asked at most once per TTL."""
        local = int(time.time() * 1000)
        if self._offset is None or local - self._offset[1] > self._server_time_ttl_ms:
            return self.server_time_ms(), True
        return local + self._offset[0], False

    # ------------------------------------------------------------------ funding

    def funding_rate(self, symbol: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Funding events with fundingTime in [start_ms, end_ms), ascending, paged by 1000.

        Counted against the separate 500 requests / 5 min limit, not the weight budget.
        """
        validate_symbol(symbol)
        _validate_range(start_ms, end_ms)
        by_time: dict[int, dict[str, Any]] = {}
        cursor = start_ms
        while cursor < end_ms:
            params = {"symbol": symbol, "startTime": cursor, "endTime": end_ms - 1, "limit": FUNDING_PAGE_LIMIT}
            page = self._get("/fapi/v1/fundingRate", params, 0, funding=True)
            for row in page:
                if start_ms <= int(row["fundingTime"]) < end_ms:
                    by_time[int(row["fundingTime"])] = row
            if len(page) < FUNDING_PAGE_LIMIT:
                break
            following = max(int(row["fundingTime"]) for row in page) + 1
            if following <= cursor:
                break
            cursor = following
        return [by_time[k] for k in sorted(by_time)]

    # ------------------------------------------------------------------ aggregate trades

    def agg_trades(self, symbol: str, *, from_id: int | None = None, start_ms: int | None = None,
                   end_ms: int | None = None, limit: int = AGG_TRADES_MAX_LIMIT) -> list[dict[str, Any]]:
        """One page of aggregate trades (weight 20); start/end inclusive and less than 1 hour apart."""
        validate_symbol(symbol)
        if not 1 <= limit <= AGG_TRADES_MAX_LIMIT:
            raise InvalidInputError(f"aggTrades limit {limit} out of range: expected 1..{AGG_TRADES_MAX_LIMIT}")
        params: dict[str, Any] = {"symbol": symbol, "limit": limit}
        if from_id is not None:
            if from_id < 0:
                raise InvalidInputError(f"from_id={from_id} must be >= 0")
            params["fromId"] = from_id
        if start_ms is not None and end_ms is not None:
            _validate_range(start_ms, end_ms)
            if end_ms - start_ms >= AGG_TRADES_MAX_SPAN_MS:
                raise InvalidInputError(
                    f"aggTrades start_ms={start_ms} and end_ms={end_ms} must be less than 1 hour apart"
                )
        if start_ms is not None:
            params["startTime"] = start_ms
        if end_ms is not None:
            params["endTime"] = end_ms
        return self._get("/fapi/v1/aggTrades", params, AGG_TRADES_WEIGHT)

    def agg_trades_range(self, symbol: str, start_ms: int, end_ms: int, *,
                         from_id: int | None = None) -> Iterator[dict[str, Any]]:
        """Every aggregate trade with T in [start_ms, end_ms), ascending by id, paged by fromId.

        Without `from_id`, the first id is found with hour-long time windows (the API's maximum span).
        """
        validate_symbol(symbol)
        _validate_range(start_ms, end_ms)
        if from_id is None:
            window = start_ms
            page: list[dict[str, Any]] = []
            while window < end_ms and not page:
                window_end = min(window + AGG_TRADES_MAX_SPAN_MS - 1, end_ms - 1)
                page = self.agg_trades(symbol, start_ms=window, end_ms=window_end)
                window = window_end + 1
            if not page:
                return
            for trade in page:
                if int(trade["T"]) >= end_ms:
                    return
                if int(trade["T"]) >= start_ms:
                    yield trade
            from_id = int(page[-1]["a"]) + 1
        while True:
            page = self.agg_trades(symbol, from_id=from_id)
            for trade in page:
                if int(trade["T"]) >= end_ms:
                    return
                if int(trade["T"]) >= start_ms:
                    yield trade
            if len(page) < AGG_TRADES_MAX_LIMIT:
                return
            from_id = int(page[-1]["a"]) + 1


def utc_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Epoch ms of a UTC wall time: a readable way to write ranges in callers and tests."""
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)
