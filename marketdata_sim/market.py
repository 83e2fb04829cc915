"""SimMarket: the deterministic simulated Binance USD-M market behind the simulator's REST, archive and WS.

It owns the clock (real or frozen), the symbols, the outage windows and the caches of generated days.
Kline ranges follow the REST rules of SPEC A.3: bars that have not closed by `now` do not exist, except
the bar in progress, which is returned (with partial values) when a range reaches `now`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import numpy as np

from marketdata_sim import generate as gen
from marketdata_sim.fmt import encode_rows, format_column, json_rows
from marketdata_sim.symbols import DAY_MS, MARK_DECIMALS, SymbolSpec, default_symbols, utc_ms
from marketdata_sim.timegrid import (
    MINUTE_MS,
    bucket_start,
    close_times,
    first_open_at_or_after,
    is_intraday,
    parse_time,
    shift_buckets,
)

Bars = gen.Bars
DEFAULT_OUTAGES: tuple[tuple[int, int], ...] = (
    (utc_ms("2024-02-10 06:35"), utc_ms("2024-02-10 07:00")),  # a 25-minute halt of all symbols (SPEC D.2)
)
KLINE_KINDS = gen.KINDS


class UnknownSymbolError(KeyError):
    """The symbol is not (or no longer) in exchangeInfo: REST answers -1121."""


def _normalise_outages(outages: Iterable[Sequence]) -> list[gen.Outage]:
    out: list[gen.Outage] = []
    for item in outages:
        start, end = parse_time(item[0]), parse_time(item[1])
        symbols = frozenset(item[2]) if len(item) > 2 and item[2] else None
        if start is None or end is None or end <= start:
            raise ValueError(f"outage {item!r}: expected (start_ms, end_ms[, symbols]) with end > start")
        out.append((start, end, symbols))
    return out


# REST kline arrays: open time, close time and trade count are JSON numbers, the rest strings (SPEC A.3)
_REST_INT_FIELDS = frozenset({0, 6, 8})
_PAGE_CACHE_SIZE = 256  # pages of up to 1,500 bars (200 kB): at most about 50 MB


class SimMarket:
    """Deterministic seeded market; every value is a pure function of (seed, symbol, time)."""

    def __init__(
        self,
        symbols: dict[str, SymbolSpec] | None = None,
        seed: int = 0,
        outages: Iterable[Sequence] = DEFAULT_OUTAGES,
        now: int | str | None = None,
        day_cache_size: int = 1500,
    ) -> None:
        self.specs = dict(symbols or default_symbols())
        self.seed = seed
        self.outages = _normalise_outages(outages)
        self._fixed_now = parse_time(now)
        self._lock = threading.RLock()
        self._days: OrderedDict[tuple[str, str, int], Bars | None] = OrderedDict()
        self._day_cache_size = day_cache_size
        self._summaries: dict[tuple[str, str, int], Bars | None] = {}
        self.generation = 0  # bumped when the data changes (outages); caches keyed on it
        # REST kline pages as sent, by request and data state: benchmarks ask the same pages every round
        self._pages: OrderedDict[tuple, bytes] = OrderedDict()

    # ----- clock -------------------------------------------------------------------------------
    @property
    def now_ms(self) -> int:
        fixed = self._fixed_now
        return fixed if fixed is not None else int(time.time() * 1000)

    @property
    def frozen(self) -> bool:
        return self._fixed_now is not None

    def set_now(self, now: int | str | None) -> None:
        """Freeze the clock at `now` (ms or ISO), or back to real time with None."""
        self._fixed_now = parse_time(now)

    def advance(self, ms: int) -> int:
        """Move a frozen clock forward (tests); returns the new now."""
        self._fixed_now = self.now_ms + ms
        return self._fixed_now

    def set_outages(self, outages: Iterable[Sequence]) -> None:
        with self._lock:
            self.outages = _normalise_outages(outages)
            self._days.clear()
            self._summaries.clear()
            self.generation += 1

    # ----- symbols -----------------------------------------------------------------------------
    def spec(self, symbol: str) -> SymbolSpec:
        try:
            return self.specs[symbol]
        except KeyError:
            raise UnknownSymbolError(symbol) from None

    def in_exchange_info(self, symbol: str, now: int | None = None) -> bool:
        """Listed at `now`: onboarded, and not removed after delisting."""
        spec = self.specs.get(symbol)
        if spec is None:
            return False
        now = self.now_ms if now is None else now
        if now < spec.onboard_ms:
            return False
        return not (spec.removed_at_delist and spec.delist_ms is not None and now >= spec.delist_ms)

    def rest_spec(self, symbol: str) -> SymbolSpec:
        """The spec of a symbol REST knows at `now`; UnknownSymbolError (-1121) otherwise."""
        if not self.in_exchange_info(symbol):
            raise UnknownSymbolError(symbol)
        return self.specs[symbol]

    def listed_symbols(self) -> list[SymbolSpec]:
        return [s for s in self.specs.values() if self.in_exchange_info(s.symbol)]

    def trading_symbols(self) -> list[SymbolSpec]:
        now = self.now_ms
        return [s for s in self.listed_symbols() if now < s.end_ms()]

    def status(self, spec: SymbolSpec) -> str:
        return "SETTLING" if spec.delist_ms is not None and self.now_ms >= spec.delist_ms else "TRADING"

    def delivery_date(self, spec: SymbolSpec) -> int:
        if spec.delist_ms is not None and self.now_ms >= spec.delist_ms - spec.announce_days * DAY_MS:
            return spec.delist_ms
        return 4133404800000

    # ----- day cache ---------------------------------------------------------------------------
    def day_bars(self, spec: SymbolSpec, day: int, kind: str = "trade") -> Bars | None:
        """All 1m bars of a UTC day (days since epoch), ignoring the clock; cached (LRU)."""
        key = (spec.symbol, kind, day)
        with self._lock:
            if key in self._days:
                self._days.move_to_end(key)
                return self._days[key]
            if kind == "trade":
                bars = gen.trade_day(spec, self.seed, day, self.outages)
            else:
                trade = self.day_bars(spec, day, "trade")
                bars = None if trade is None else gen.price_day(spec, self.seed, day, kind, trade)
            self._days[key] = bars
            while len(self._days) > self._day_cache_size:
                self._days.popitem(last=False)
            return bars

    def minute_bars(self, spec: SymbolSpec, lo: int, hi: int, kind: str = "trade",
                    now: int | None = None) -> Bars:
        """1m bars opening in [lo, hi) that exist at `now` (closed, or in progress with partial values)."""
        now = self.now_ms if now is None else now
        hi = min(hi, now + 1)
        if hi <= lo:
            return gen.empty_bars()
        parts: list[Bars] = []
        for day in range(lo // DAY_MS, (hi - 1) // DAY_MS + 1):
            bars = self.day_bars(spec, day, kind)
            if bars is None:
                continue
            ot = bars["open_time"]
            i0, i1 = np.searchsorted(ot, [lo, hi])
            if i1 > i0:
                parts.append({c: bars[c][i0:i1] for c in gen.BAR_COLUMNS})
        if not parts:
            return gen.empty_bars()
        out = {c: np.concatenate([p[c] for p in parts]) if len(parts) > 1 else parts[0][c].copy()
               for c in gen.BAR_COLUMNS}
        last_ot = int(out["open_time"][-1])
        if last_ot + MINUTE_MS > now:  # the bar in progress
            row = {c: int(out[c][-1]) for c in gen.BAR_COLUMNS}
            part = gen.partial_bar(row, now - last_ot, kind, spec.tick_units)
            for c in gen.BAR_COLUMNS:
                out[c][-1] = part[c]
        return out

    def _day_summary(self, spec: SymbolSpec, day: int, kind: str, now: int) -> Bars | None:
        settled = (day + 1) * DAY_MS <= now
        key = (spec.symbol, kind, day)
        if settled and key in self._summaries:
            return self._summaries[key]
        if settled:
            bars = self.day_bars(spec, day, kind)
        else:
            bars = self.minute_bars(spec, day * DAY_MS, (day + 1) * DAY_MS, kind, now)
        summary = None if bars is None or not len(bars["open_time"]) else aggregate(bars, "1d")
        if settled:
            with self._lock:
                self._summaries[key] = summary
        return summary

    # ----- klines ------------------------------------------------------------------------------
    def bars(self, spec: SymbolSpec, interval: str, lo: int, hi: int, kind: str = "trade",
             now: int | None = None) -> Bars:
        """Bars of `interval` opening in [lo, hi) (lo, hi on the grid), aggregated exactly from 1m."""
        now = self.now_ms if now is None else now
        if interval == "1m":
            return self.minute_bars(spec, lo, hi, kind, now)
        if is_intraday(interval):
            return aggregate(self.minute_bars(spec, lo, hi, kind, now), interval)
        hi = min(hi, now + 1)
        days = [self._day_summary(spec, d, kind, now) for d in range(lo // DAY_MS, -(-hi // DAY_MS))]
        days = [d for d in days if d is not None]
        if not days:
            return gen.empty_bars()
        table = {c: np.concatenate([d[c] for d in days]) for c in gen.BAR_COLUMNS}
        return table if interval == "1d" else aggregate(table, interval)

    def klines(self, symbol: str, interval: str, start_ms: int | None = None, end_ms: int | None = None,
               limit: int = 500, kind: str = "trade") -> Bars:
        """What /fapi/v1/klines returns: openTime in [start, end], at most `limit`, ascending (SPEC A.3)."""
        spec = self.spec(symbol)
        now = self.now_ms
        first = int(bucket_start(np.array([spec.onboard_ms]), interval)[0])
        last = min(now, spec.end_ms() - 1)  # the last ms a bar may open at
        if last < first:
            return gen.empty_bars()
        if start_ms is not None:
            cur = first_open_at_or_after(max(start_ms, first), interval)
            stop = last if end_ms is None else min(end_ms, last)
            chunks: list[Bars] = []
            got = 0
            # the bar opening at or before `stop` is built from all its minutes, not cut at `stop`
            stop_end = int(shift_buckets(bucket_start(np.array([stop]), interval)[0], interval, 1))
            while cur <= stop and got < limit:
                nxt = int(shift_buckets(cur, interval, limit - got + 1))
                part = self.bars(spec, interval, cur, min(nxt, stop_end), kind, now)
                chunks.append(part)
                got += len(part["open_time"])
                cur = nxt
            return _take(_concat(chunks), limit, from_end=False)
        stop = last if end_ms is None else min(end_ms, last)
        if stop < first:
            return gen.empty_bars()
        hi = int(shift_buckets(bucket_start(np.array([stop]), interval)[0], interval, 1))
        chunks = []
        got = 0
        while hi > first and got < limit:
            lo = max(int(shift_buckets(hi, interval, -(limit - got + 1))), first)
            part = self.bars(spec, interval, lo, hi, kind, now)
            chunks.insert(0, part)
            got += len(part["open_time"])
            hi = lo
        return _take(_concat(chunks), limit, from_end=True)

    # ----- text --------------------------------------------------------------------------------
    def kline_rest_rows(self, spec: SymbolSpec, interval: str, bars: Bars, kind: str = "trade") -> list[list]:
        """Bars as the 12-item REST arrays (ints and decimal strings)."""
        n = len(bars["open_time"])
        if not n:
            return []
        cols = kline_text_columns(spec, interval, bars, kind)
        texts = [format_column(v, d) if not isinstance(v, str) else [v] * n for v, d in
                 ((c if isinstance(c, str) else c[0], 0 if isinstance(c, str) else c[1]) for c in cols)]
        ints = _REST_INT_FIELDS
        rows = []
        for i in range(n):
            rows.append([int(texts[j][i]) if j in ints else texts[j][i] for j in range(12)])
        return rows

    def kline_page_json(self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int,
                        kind: str = "trade") -> bytes:
        """The body of one /fapi/v1/klines answer (`klines` as `kline_rest_json`), remembered for the same
        request while the data and the clock stay as they are (a frozen clock: every benchmark round; a
        running clock makes every request new, so nothing is kept)."""
        spec = self.spec(symbol)
        if not self.frozen:
            return self.kline_rest_json(spec, interval, self.klines(symbol, interval, start_ms, end_ms, limit, kind),
                                        kind)
        key = (spec, interval, start_ms, end_ms, limit, kind, self.generation, self.now_ms)
        with self._lock:
            body = self._pages.get(key)
            if body is not None:
                self._pages.move_to_end(key)
                return body
        body = self.kline_rest_json(spec, interval, self.klines(symbol, interval, start_ms, end_ms, limit, kind), kind)
        with self._lock:
            self._pages[key] = body
            while len(self._pages) > _PAGE_CACHE_SIZE:
                self._pages.popitem(last=False)
        return body

    def kline_rest_json(self, spec: SymbolSpec, interval: str, bars: Bars, kind: str = "trade") -> bytes:
        """The JSON body of a REST kline page: `kline_rest_rows` as orjson writes it, built vectorised (the
        simulator must not be what a client benchmark measures)."""
        return json_rows(kline_text_columns(spec, interval, bars, kind), [i not in _REST_INT_FIELDS for i in range(12)])

    def kline_csv(self, spec: SymbolSpec, interval: str, bars: Bars, kind: str = "trade") -> bytes:
        """Bars as archive CSV lines (no header), exactly the REST values."""
        return encode_rows(kline_text_columns(spec, interval, bars, kind))


def kline_text_columns(spec: SymbolSpec, interval: str, bars: Bars, kind: str) -> list:
    """The 12 archive columns as encode_rows columns."""
    ot = bars["open_time"]
    ct = close_times(ot, interval)
    if kind == "trade":
        p, q, qq = spec.price_decimals, spec.qty_decimals, spec.quote_decimals
        return [(ot, 0), (bars["open"], p), (bars["high"], p), (bars["low"], p), (bars["close"], p),
                (bars["volume"], q), (ct, 0), (bars["quote"], qq), (bars["count"], 0),
                (bars["tbv"], q), (bars["tbq"], qq), "0"]
    m = MARK_DECIMALS
    return [(ot, 0), (bars["open"], m), (bars["high"], m), (bars["low"], m), (bars["close"], m),
            "0", (ct, 0), "0", (bars["count"], 0), "0", "0", "0"]


def aggregate(bars: Bars, interval: str) -> Bars:
    """Exact OHLCV aggregation: open first, close last, max high, min low, sums; a bar per non-empty bucket."""
    ot = bars["open_time"]
    if not len(ot):
        return gen.empty_bars()
    keys = bucket_start(ot, interval)
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    ends = np.concatenate([starts[1:], [len(ot)]]) - 1
    out = {
        "open_time": keys[starts],
        "open": bars["open"][starts],
        "high": np.maximum.reduceat(bars["high"], starts),
        "low": np.minimum.reduceat(bars["low"], starts),
        "close": bars["close"][ends],
    }
    for c in gen.SUM_COLUMNS:
        out[c] = np.add.reduceat(bars[c], starts)
    return out


def _concat(chunks: list[Bars]) -> Bars:
    chunks = [c for c in chunks if len(c["open_time"])]
    if not chunks:
        return gen.empty_bars()
    return {c: np.concatenate([ch[c] for ch in chunks]) for c in gen.BAR_COLUMNS}


def _take(bars: Bars, limit: int, from_end: bool) -> Bars:
    if len(bars["open_time"]) <= limit:
        return bars
    sl = slice(-limit, None) if from_end else slice(0, limit)
    return {c: v[sl] for c, v in bars.items()}
