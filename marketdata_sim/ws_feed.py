"""Channels: one per subscribed stream name, producing its payloads as the market clock moves.

Why per-stream channels: every connection subscribed to `btcusdt@kline_1m` must see the same events, and
the payload is encoded once however many connections receive it. A channel remembers up to which market
time it has produced, so each closed kline goes out exactly once, aggregate trades go out in id order
without holes, and depth diffs chain (`pu` = the previous event's `u`). All values come from the same
functions the REST side uses (SimMarket, marketdata_sim.derived), so the streams agree with REST.
"""

from __future__ import annotations

import numpy as np
import orjson

from marketdata_sim import derived
from marketdata_sim import ws_depth as depth
from marketdata_sim.market import SimMarket
from marketdata_sim.symbols import DAY_MS, SymbolSpec
from marketdata_sim.timegrid import bucket_start, shift_buckets
from marketdata_sim.ws_streams import StreamName

MAX_CATCHUP_MS = 3_600_000  # a clock jump of more than an hour is not replayed (the client sees a hole)
MAX_CLOSED_KLINES = 10  # likewise for closed klines after a jump


class BookCache:
    """Full books per (symbol, now): the depth, partial depth and bookTicker channels of one symbol
    share one computation per tick."""

    def __init__(self, market: SimMarket) -> None:
        self.market = market
        self._books: dict[tuple[str, int], depth.Book] = {}

    def get(self, spec: SymbolSpec, now: int) -> depth.Book:
        key = (spec.symbol, now)
        book = self._books.get(key)
        if book is None:
            if len(self._books) > 256:
                self._books.clear()
            book = self._books[key] = depth.full_book(self.market, spec, now)
        return book


class Channel:
    """A stream that produces nothing (well-formed but not modelled, or an unknown symbol)."""

    def __init__(self, stream: StreamName, market: SimMarket, books: BookCache, now: int) -> None:
        self.stream = stream
        self.market = market
        self.books = books
        self.last_now = now
        name = stream.name.encode()
        self.prefix = b'{"stream":"' + name + b'","data":'
        self.subs: set = set()  # connections (ws.Conn)
        self.rate = 0.0  # synthetic messages per second (0: real market data)
        self._carry = 0.0
        self.last_payload: bytes | None = None
        self.break_mode: str | None = None  # depth fault: "skip" or "perturb" the next event

    def spec(self, now: int) -> SymbolSpec | None:
        sym = self.stream.symbol
        if sym is None or sym not in self.market.specs or not self.market.in_exchange_info(sym, now):
            return None
        return self.market.specs[sym]

    def produce(self, now: int) -> list[bytes]:
        """Payloads (raw JSON) for market time (last_now, now]."""
        if now < self.last_now:  # the clock was set back: restart from there
            self.restart(now)
            return []
        out = self._produce(now) if now > self.last_now else []
        self.last_now = now
        if out:
            self.last_payload = out[-1]
        return out

    def restart(self, now: int) -> None:
        self.last_now = now

    def _produce(self, now: int) -> list[bytes]:
        return []

    def synthetic(self, now: int, dt_s: float) -> list[bytes]:
        """`rate` messages a second regardless of the market (throughput benchmarks): by default the
        last real payload again; aggregate trades continue with consecutive ids."""
        want = self.rate * dt_s + self._carry
        count = int(want)
        self._carry = want - count
        if count <= 0:
            return []
        if self.last_payload is None:
            self.produce(now)
            if self.last_payload is None:
                return []
        return [self.last_payload] * count


class KlineChannel(Channel):
    """`<symbol>@kline_<interval>`: the open bar every 250 ms when it changed, each closed bar once."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.last_update = self.last_now
        self.last_row: list | None = None

    def _produce(self, now: int) -> list[bytes]:
        spec = self.spec(now)
        if spec is None:
            return []
        interval = self.stream.interval
        assert interval is not None
        out: list[bytes] = []
        start = max(self.last_now, now - MAX_CATCHUP_MS)
        o = int(bucket_start(np.array([start]), interval)[0])
        closing: list[int] = []
        while True:
            nxt = int(shift_buckets(o, interval, 1))
            if nxt > now:
                break
            if nxt > self.last_now:
                closing.append(o)
            o = nxt
        for open_time in closing[-MAX_CLOSED_KLINES:]:
            payload = self._payload(spec, open_time, now, closed=True)
            if payload is not None:
                out.append(payload)
        if now - self.last_update >= self.stream.period_ms:
            self.last_update = now
            current = int(bucket_start(np.array([now]), interval)[0])
            payload = self._payload(spec, current, now, closed=False)
            if payload is not None:
                out.append(payload)
        return out

    def _payload(self, spec: SymbolSpec, open_time: int, now: int, closed: bool) -> bytes | None:
        interval = self.stream.interval
        nxt = int(shift_buckets(open_time, interval, 1))
        bars = self.market.bars(spec, interval, open_time, nxt, "trade", now)
        if not len(bars["open_time"]) or int(bars["open_time"][0]) != open_time:
            return None
        row = self.market.kline_rest_rows(spec, interval, bars)[0]
        if not closed:
            if row == self.last_row:
                return None
            self.last_row = row
        n = int(row[8])
        first, last = trade_id_range(self.market, spec, open_time, nxt, n)
        k = {
            "t": row[0], "T": row[6], "s": spec.symbol, "i": interval, "f": first, "L": last,
            "o": row[1], "c": row[4], "h": row[2], "l": row[3], "v": row[5], "n": n, "x": closed,
            "q": row[7], "V": row[9], "Q": row[10], "B": "0",
        }
        return orjson.dumps({"e": "kline", "E": now, "s": spec.symbol, "k": k})


def trade_id_range(market: SimMarket, spec: SymbolSpec, lo: int, hi: int, n: int) -> tuple[int, int]:
    """First and last trade id of a bar with `n` trades opening at `lo` (ids are consecutive).

    A bar without trades carries -1 / -1 [INF: Binance's value for an empty bar is not in SPEC]."""
    if n <= 0:
        return -1, -1
    day = lo // DAY_MS
    while day * DAY_MS < hi:
        bars = market.day_bars(spec, day)
        if bars is not None:
            ot = bars["open_time"]
            i = int(np.searchsorted(ot, lo))
            active = np.flatnonzero(bars["count"][i:] > 0)
            if len(active) and int(ot[i + active[0]]) < hi:
                first = int(bars["trade_id0"][i + active[0]])
                return first, first + n - 1
        day += 1
    return -1, -1


_AGG_SYNTH = b'{"e":"aggTrade","E":%d,"a":%d,"s":"%s","p":"%s","q":"%s","nq":"%s","f":%d,"l":%d,"T":%d,"m":%s}'


class AggTradeChannel(Channel):
    """`<symbol>@aggTrade`: every aggregate trade with T in (last, now], exactly the REST rows."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self._next_a: int | None = None
        self._last_row: dict | None = None

    def _produce(self, now: int) -> list[bytes]:
        spec = self.spec(now)
        if spec is None:
            return []
        start = max(self.last_now, now - MAX_CATCHUP_MS) + 1
        rows = derived.agg_trades(self.market, spec.symbol, None, start, now, limit=10**9)
        out = []
        for r in rows:
            out.append(orjson.dumps({
                "e": "aggTrade", "E": now, "a": r["a"], "s": spec.symbol, "p": r["p"], "q": r["q"],
                "nq": r["q"], "f": r["f"], "l": r["l"], "T": r["T"], "m": r["m"],
            }))
        if rows:
            self._last_row = rows[-1]
            self._next_a = rows[-1]["a"] + 1
        return out

    def synthetic(self, now: int, dt_s: float) -> list[bytes]:
        want = self.rate * dt_s + self._carry
        count = int(want)
        self._carry = want - count
        if count <= 0:
            return []
        spec = self.spec(now)
        if spec is None:
            return []
        if self._last_row is None:
            rows = derived.agg_trades(self.market, spec.symbol, limit=1)
            self._last_row = rows[-1] if rows else {"a": 0, "p": "1", "q": "1", "l": 0, "m": True}
            self._next_a = self._last_row["a"] + 1
        r = self._last_row
        sym = spec.symbol.encode()
        price, qty = r["p"].encode(), r["q"].encode()
        maker = b"true" if r["m"] else b"false"
        a0 = self._next_a
        trade = r["l"] + 1 + (a0 - r["a"] - 1)
        out = [_AGG_SYNTH % (now, a0 + i, sym, price, qty, qty, trade + i, trade + i, now, maker)
               for i in range(count)]
        self._next_a = a0 + count
        self.last_payload = out[-1]
        return out


class PeriodicChannel(Channel):
    """A snapshot-like stream sent when market time crosses a multiple of its period."""

    def _produce(self, now: int) -> list[bytes]:
        period = self.stream.period_ms
        if now // period == self.last_now // period:
            return []
        payload = self._payload(now)
        return [payload] if payload is not None else []

    def _payload(self, now: int) -> bytes | None:
        raise NotImplementedError


def mark_price_event(market: SimMarket, spec: SymbolSpec, now: int) -> dict:
    pi = derived.premium_index(market, spec)
    return {
        "e": "markPriceUpdate", "E": now, "s": spec.symbol, "p": pi["markPrice"], "ap": pi["markPrice"],
        "P": pi["estimatedSettlePrice"], "i": pi["indexPrice"], "r": pi["lastFundingRate"],
        "T": pi["nextFundingTime"],
    }


class MarkPriceChannel(PeriodicChannel):
    """`<symbol>@markPrice[@1s]`: mark/index price, funding rate `r`, next funding time `T` (= REST)."""

    def _payload(self, now: int) -> bytes | None:
        spec = self.spec(now)
        return None if spec is None else orjson.dumps(mark_price_event(self.market, spec, now))


class MarkPriceArrChannel(PeriodicChannel):
    """`!markPrice@arr[@1s]`: every trading symbol in one array."""

    def _payload(self, now: int) -> bytes | None:
        events = [mark_price_event(self.market, s, now) for s in self.market.trading_symbols()]
        return orjson.dumps(events) if events else None


class TickerChannel(PeriodicChannel):
    """`<symbol>@ticker` (24hrTicker) and `<symbol>@miniTicker`, from the REST 24 h ticker."""

    def _payload(self, now: int) -> bytes | None:
        spec = self.spec(now)
        if spec is None:
            return None
        t = derived.ticker_24h(self.market, spec)
        if self.stream.kind == "miniTicker":
            return orjson.dumps({
                "e": "24hrMiniTicker", "E": now, "s": spec.symbol, "c": t["lastPrice"], "o": t["openPrice"],
                "h": t["highPrice"], "l": t["lowPrice"], "v": t["volume"], "q": t["quoteVolume"],
            })
        return orjson.dumps({
            "e": "24hrTicker", "E": now, "s": spec.symbol, "p": t["priceChange"], "P": t["priceChangePercent"],
            "w": t["weightedAvgPrice"], "c": t["lastPrice"], "Q": t["lastQty"], "o": t["openPrice"],
            "h": t["highPrice"], "l": t["lowPrice"], "v": t["volume"], "q": t["quoteVolume"],
            "O": t["openTime"], "C": t["closeTime"], "F": t["firstId"], "L": t["lastId"], "n": t["count"],
        })


class DepthChannel(Channel):
    """`@depth[@100ms|@500ms]` diffs and `@depth<N>` partial books, chained by U / u / pu."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.prev: depth.Book | None = None

    def restart(self, now: int) -> None:
        super().restart(now)
        self.prev = None

    def _produce(self, now: int) -> list[bytes]:
        spec = self.spec(now)
        if spec is None:
            self.prev = None
            return []
        if self.prev is None:
            self.prev = self.books.get(spec, self.last_now)
        prev = self.prev
        if now - prev.now < self.stream.period_ms:
            return []
        cur = self.books.get(spec, now)
        if now - prev.now > MAX_CATCHUP_MS:  # too long a jump: a fresh book, the chain breaks visibly
            prev = self.books.get(spec, now - MAX_CATCHUP_MS)
        m = self.market
        pu = depth.update_id(m, spec, prev.t)
        ev = {"e": "depthUpdate", "E": now, "T": cur.t, "s": spec.symbol,
              "U": depth.update_id(m, spec, prev.t + 1), "u": depth.update_id(m, spec, cur.t), "pu": pu}
        if self.stream.kind == "partialDepth":
            n = self.stream.levels or 20
            ev["b"] = depth.fmt_levels(spec, depth.top(cur.bids, n, True), descending=True)
            ev["a"] = depth.fmt_levels(spec, depth.top(cur.asks, n, False))
        else:
            mlo, mhi = depth.mid_range(m, spec, prev.now, cur.now)
            bids, asks = depth.diff_levels(prev, cur, mlo, mhi, depth.depth_cap(spec))
            ev["b"] = depth.fmt_levels(spec, bids)
            ev["a"] = depth.fmt_levels(spec, asks)
        self.prev = cur
        mode, self.break_mode = self.break_mode, None
        if mode == "skip":
            return []
        if mode == "perturb":
            ev["pu"] = pu - 1
        return [orjson.dumps(ev)]


class BookTickerChannel(Channel):
    """`<symbol>@bookTicker`: best bid/ask with the book's update id, whenever the top changes."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self._top: tuple | None = None

    def _produce(self, now: int) -> list[bytes]:
        spec = self.spec(now)
        if spec is None:
            return []
        book = self.books.get(spec, now)
        bid = depth.top(book.bids, 1, True)
        ask = depth.top(book.asks, 1, False)
        if not bid or not ask:
            return []
        (bp, bq), (ap, aq) = next(iter(bid.items())), next(iter(ask.items()))
        top = (bp, bq, ap, aq)
        if top == self._top:
            return []
        self._top = top
        (b, bqs), = depth.fmt_levels(spec, {bp: bq})
        (a, aqs), = depth.fmt_levels(spec, {ap: aq})
        return [orjson.dumps({"e": "bookTicker", "u": depth.update_id(self.market, spec, book.t),
                              "s": spec.symbol, "b": b, "B": bqs, "a": a, "A": aqs, "T": book.t, "E": now})]


_KINDS: dict[str, type[Channel]] = {
    "kline": KlineChannel,
    "aggTrade": AggTradeChannel,
    "markPrice": MarkPriceChannel,
    "markPriceArr": MarkPriceArrChannel,
    "ticker": TickerChannel,
    "miniTicker": TickerChannel,
    "depth": DepthChannel,
    "partialDepth": DepthChannel,
    "bookTicker": BookTickerChannel,
}


def make_channel(stream: StreamName, market: SimMarket, books: BookCache, now: int) -> Channel:
    return _KINDS.get(stream.kind, Channel)(stream, market, books, now)
