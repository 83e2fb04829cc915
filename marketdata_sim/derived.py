"""Market data derived from the 1m bars: aggregate trades, funding, premium index, 24h ticker, order book,
and the archive-only metrics / bookDepth tables. All deterministic in (seed, symbol, time)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np

from marketdata_sim import generate as gen
from marketdata_sim.fmt import fmt_one, hash_u01
from marketdata_sim.market import SimMarket
from marketdata_sim.symbols import DAY_MS, HOUR_MS, MARK_DECIMALS, SymbolSpec
from marketdata_sim.timegrid import MINUTE_MS

AGG_MAX_SPAN_MS = HOUR_MS


# ----- aggregate trades ---------------------------------------------------------------------------
def _minute_aggs(market: SimMarket, spec: SymbolSpec, minute_ms: int) -> dict[str, np.ndarray] | None:
    day = market.day_bars(spec, minute_ms // DAY_MS)
    if day is None:
        return None
    i = int(np.searchsorted(day["open_time"], minute_ms))
    if i >= len(day["open_time"]) or day["open_time"][i] != minute_ms:
        return None
    return gen.day_agg_trades(spec, market.seed, day, np.array([i]))


def _agg_rows(spec: SymbolSpec, aggs: dict[str, np.ndarray]) -> list[dict]:
    p, q = spec.price_decimals, spec.qty_decimals
    return [
        {"a": int(a), "p": fmt_one(int(pr), p), "q": fmt_one(int(qt), q), "f": int(f), "l": int(l_),
         "T": int(t), "m": bool(m)}
        for a, pr, qt, f, l_, t, m in zip(aggs["a"], aggs["p"], aggs["q"], aggs["f"], aggs["l"], aggs["T"],
                                          aggs["m"], strict=True)
    ]


def agg_trades(market: SimMarket, symbol: str, from_id: int | None = None, start_ms: int | None = None,
               end_ms: int | None = None, limit: int = 500) -> list[dict]:
    """/fapi/v1/aggTrades rows (SPEC A.10); only trades at or before now."""
    spec = market.spec(symbol)
    now = market.now_ms
    out: list[dict] = []
    if from_id is not None:
        day = spec.onboard_ms // DAY_MS + max(from_id - 1, 0) // spec.aggs_per_day
        bars = market.day_bars(spec, day)
        if bars is None:
            return []
        i = max(int(np.searchsorted(bars["agg_id0"], from_id, side="right")) - 1, 0)
        minute = int(bars["open_time"][i])
        stop = min(now, spec.end_ms())
        while len(out) < limit and minute <= stop:
            aggs = _minute_aggs(market, spec, minute)
            if aggs is not None:
                keep = (aggs["a"] >= from_id) & (aggs["T"] <= now)
                if start_ms is not None:
                    keep &= aggs["T"] >= start_ms
                if end_ms is not None:
                    keep &= aggs["T"] <= end_ms
                out.extend(_agg_rows(spec, {k: v[keep] for k, v in aggs.items()}))
            minute += MINUTE_MS
        return out[:limit]
    if start_ms is None and end_ms is None:
        minute = now - now % MINUTE_MS
        floor = max(spec.onboard_ms, now - DAY_MS)
        chunks: list[list[dict]] = []
        got = 0
        while got < limit and minute >= floor:
            aggs = _minute_aggs(market, spec, minute)
            if aggs is not None:
                keep = aggs["T"] <= now
                rows = _agg_rows(spec, {k: v[keep] for k, v in aggs.items()})
                chunks.append(rows)
                got += len(rows)
            minute -= MINUTE_MS
        flat = [r for rows in reversed(chunks) for r in rows]
        return flat[-limit:]
    if start_ms is None:
        start_ms = end_ms - AGG_MAX_SPAN_MS + 1
    if end_ms is None:
        end_ms = start_ms + AGG_MAX_SPAN_MS - 1
    minute = start_ms - start_ms % MINUTE_MS
    while len(out) < limit and minute <= min(end_ms, now):
        aggs = _minute_aggs(market, spec, minute)
        if aggs is not None:
            keep = (aggs["T"] >= start_ms) & (aggs["T"] <= end_ms) & (aggs["T"] <= now)
            out.extend(_agg_rows(spec, {k: v[keep] for k, v in aggs.items()}))
        minute += MINUTE_MS
    return out[:limit]


# ----- funding -----------------------------------------------------------------------------------
def funding_times(spec: SymbolSpec, upto_ms: int) -> np.ndarray:
    """Scheduled (unjittered) funding times after listing, before delisting, at or before `upto_ms`."""
    upto = min(upto_ms, spec.end_ms() - 1)
    parts = []
    schedule = list(spec.funding_schedule)
    for k, (start, hours) in enumerate(schedule):
        seg_end = schedule[k + 1][0] if k + 1 < len(schedule) else upto + 1
        lo = max(start, spec.onboard_ms + 1)
        hi = min(seg_end, upto + 1)
        step = hours * HOUR_MS
        first = -(-lo // step) * step
        if first < hi:
            parts.append(np.arange(first, hi, step, dtype=np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def funding_values(market: SimMarket, spec: SymbolSpec, times: np.ndarray) -> dict[str, np.ndarray]:
    """Jittered fundingTime (SPEC A.6: a few ms after the hour), rate and mark price in 1e-8 units."""
    seed = market.seed
    u = hash_u01(seed, spec.sid, times, 11)
    jitter = np.where(u < 0.3, 0, (u * 25).astype(np.int64))
    v = hash_u01(seed, spec.sid, times, 12)
    w = hash_u01(seed, spec.sid, times, 13)
    rate = np.where(v < 0.6, 10_000, np.rint(10_000 + (w - 0.5) * 60_000)).astype(np.int64)
    days = times / DAY_MS
    d0 = np.floor(days).astype(np.int64)
    frac = days - d0
    anchors0 = gen.log_anchor(spec, seed, d0)
    anchors1 = gen.log_anchor(spec, seed, d0 + 1)
    mark = np.exp(anchors0 + (anchors1 - anchors0) * frac) * (1 + (hash_u01(seed, spec.sid, times, 14) - 0.5) * 1e-3)
    return {"time": times + jitter, "rate": rate, "mark": np.rint(mark * 10**MARK_DECIMALS).astype(np.int64)}


def funding_rows(market: SimMarket, symbol: str | None, start_ms: int | None, end_ms: int | None,
                 limit: int = 100) -> list[dict]:
    """/fapi/v1/fundingRate rows (SPEC A.6), ascending."""
    specs = [market.rest_spec(symbol)] if symbol else market.listed_symbols()
    now = market.now_ms
    rows: list[tuple[int, str, int, int]] = []
    for spec in specs:
        vals = funding_values(market, spec, funding_times(spec, now))
        rows.extend(zip(vals["time"].tolist(), [spec.symbol] * len(vals["time"]), vals["rate"].tolist(),
                        vals["mark"].tolist(), strict=True))
    rows.sort()
    if start_ms is not None:
        rows = [r for r in rows if r[0] >= start_ms]
    if end_ms is not None:
        rows = [r for r in rows if r[0] <= end_ms]
    rows = rows[:limit] if start_ms is not None else rows[-limit:]
    return [{"symbol": s, "fundingRate": fmt_one(r, 8), "fundingTime": t, "markPrice": fmt_one(m, MARK_DECIMALS)}
            for t, s, r, m in rows]


def funding_month_csv(market: SimMarket, spec: SymbolSpec, month_start: int, month_end: int) -> bytes:
    """Archive fundingRate rows: calc_time,funding_interval_hours,last_funding_rate."""
    times = funding_times(spec, month_end - 1)
    times = times[times >= month_start]
    vals = funding_values(market, spec, times)
    return "".join(
        f"{t},{spec.funding_hours_at(s)},{fmt_one(r, 8)}\n"
        for s, t, r in zip(times.tolist(), vals["time"].tolist(), vals["rate"].tolist(), strict=True)
    ).encode()


# ----- premium index, ticker, order book -----------------------------------------------------------
def _latest(market: SimMarket, spec: SymbolSpec, kind: str) -> dict[str, int] | None:
    now = min(market.now_ms, spec.end_ms() - 1)
    for back in range(0, 3 * DAY_MS, DAY_MS):
        bars = market.minute_bars(spec, max(now - back - DAY_MS, 0), now + 1, kind, market.now_ms)
        if len(bars["open_time"]):
            return {c: int(v[-1]) for c, v in bars.items()}
        now -= DAY_MS
    return None


def premium_index(market: SimMarket, spec: SymbolSpec) -> dict:
    """/fapi/v1/premiumIndex object (SPEC A.7)."""
    now = market.now_ms
    mark = _latest(market, spec, "mark")
    index = _latest(market, spec, "index")
    mark_v = mark["close"] if mark else 0
    index_v = index["close"] if index else 0
    upcoming = funding_times(spec, now + 8 * HOUR_MS)
    upcoming = upcoming[upcoming > now]
    trading = now < spec.end_ms()
    rate = funding_values(market, spec, upcoming[:1])["rate"] if len(upcoming) and trading else None
    return {
        "symbol": spec.symbol,
        "markPrice": fmt_one(mark_v, MARK_DECIMALS),
        "indexPrice": fmt_one(index_v, MARK_DECIMALS),
        "estimatedSettlePrice": fmt_one(index_v - index_v // 20_000, MARK_DECIMALS),
        "lastFundingRate": fmt_one(int(rate[0]), 8) if rate is not None else "",
        "interestRate": "0.00010000",
        "nextFundingTime": int(upcoming[0]) if rate is not None else 0,
        "time": now,
    }


def ticker_24h(market: SimMarket, spec: SymbolSpec) -> dict:
    """/fapi/v1/ticker/24hr object: a rolling 24 h window ending now (SPEC A.8)."""
    now = market.now_ms
    open_time = (now - DAY_MS) - (now - DAY_MS) % MINUTE_MS
    bars = market.minute_bars(spec, open_time, now + 1)
    p, q, qq = spec.price_decimals, spec.qty_decimals, spec.quote_decimals
    if not len(bars["open_time"]):
        zero_p, zero_q = fmt_one(0, p), fmt_one(0, q)
        return {"symbol": spec.symbol, "priceChange": zero_p, "priceChangePercent": "0.000",
                "weightedAvgPrice": zero_p, "lastPrice": zero_p, "lastQty": zero_q, "openPrice": zero_p,
                "highPrice": zero_p, "lowPrice": zero_p, "volume": zero_q, "quoteVolume": fmt_one(0, p),
                "openTime": open_time, "closeTime": now, "firstId": -1, "lastId": -1, "count": 0}
    o, c = int(bars["open"][0]), int(bars["close"][-1])
    vol, quote, count = int(bars["volume"].sum()), int(bars["quote"].sum()), int(bars["count"].sum())
    shift = p + q - qq
    wavg = 0 if vol == 0 else round(quote * 10**shift / vol) if shift >= 0 else round(quote / 10**-shift / vol)
    quote_p = round(quote * 10 ** (p - qq)) if p >= qq else quote // 10 ** (qq - p)
    day = market.day_bars(spec, int(bars["open_time"][0]) // DAY_MS)
    first_id = int(day["trade_id0"][np.searchsorted(day["open_time"], bars["open_time"][0])]) if day else 1
    active = np.flatnonzero(bars["volume"] > 0)
    last_qty = 0
    if len(active):
        aggs = _minute_aggs(market, spec, int(bars["open_time"][active[-1]]))
        if aggs is not None and len(aggs["q"]):
            last_qty = int(aggs["q"][-1])
    change = c - o
    pct = f"{(change / o * 100) if o else 0:.3f}"
    return {
        "symbol": spec.symbol, "priceChange": fmt_one(change, p), "priceChangePercent": pct,
        "weightedAvgPrice": fmt_one(wavg, p), "lastPrice": fmt_one(c, p), "lastQty": fmt_one(last_qty, q),
        "openPrice": fmt_one(o, p), "highPrice": fmt_one(int(bars["high"].max()), p),
        "lowPrice": fmt_one(int(bars["low"].min()), p), "volume": fmt_one(vol, q),
        "quoteVolume": fmt_one(quote_p, p), "openTime": open_time, "closeTime": now,
        "firstId": first_id, "lastId": first_id + count - 1, "count": count,
    }


def book_update_id(market: SimMarket, spec: SymbolSpec, t_ms: int) -> int:
    """One global, monotone update-id sequence shared by all symbols (SPEC B.5): 64 ids per ms."""
    slot = sorted(market.specs).index(spec.symbol) % 64
    return t_ms * 64 + slot


def order_book(market: SimMarket, spec: SymbolSpec, t_ms: int, levels: int) -> tuple[list, list]:
    """Bids (descending) and asks (ascending) as [price, qty] strings around the last trade price at t_ms.

    Level quantities change on per-level periods (2-30 s), so consecutive books differ by a few levels.
    """
    last = _latest(market, spec, "trade")
    tick = spec.tick_units
    mid = (last["close"] if last else tick * 100) // tick
    depth_cap = 300 if spec.zero_volume_prob > 0 else 1000
    n = min(levels, depth_cap)
    offs = np.arange(1, n + 1, dtype=np.int64)
    bid_ticks = mid - offs + 1
    ask_ticks = mid + offs
    bid_ticks = bid_ticks[bid_ticks > 0]
    out = []
    for side, ticks in ((0, bid_ticks), (1, ask_ticks)):
        period = 2_000 + (hash_u01(market.seed, spec.sid, ticks, side, 21) * 28_000).astype(np.int64)
        phase = (hash_u01(market.seed, spec.sid, ticks, side, 22) * period).astype(np.int64)
        epoch = (t_ms + phase) // period
        u = hash_u01(market.seed, spec.sid, ticks, side, epoch)
        qty = 1 + (u * u * 3 * spec.lots_per_trade).astype(np.int64)
        out.append([[fmt_one(int(t) * tick, spec.price_decimals), fmt_one(int(x), spec.qty_decimals)]
                    for t, x in zip(ticks, qty, strict=True)])
    return out[0], out[1]


def depth_snapshot(market: SimMarket, spec: SymbolSpec, limit: int) -> dict:
    """/fapi/v1/depth (SPEC A.9): `T` a few ms before `E`, lastUpdateId from the global sequence at T."""
    now = market.now_ms
    t = now - 3
    bids, asks = order_book(market, spec, t, limit)
    return {"lastUpdateId": book_update_id(market, spec, t), "E": now, "T": t, "bids": bids, "asks": asks}


# ----- archive-only daily tables ----------------------------------------------------------------------
def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def metrics_day_csv(market: SimMarket, spec: SymbolSpec, day: int) -> bytes:
    """metrics rows every 5 min, stamped at the end of the interval (SPEC C.3)."""
    ends = day * DAY_MS + np.arange(1, 289, dtype=np.int64) * 300_000
    ends = ends[(ends > spec.onboard_ms) & (ends <= spec.end_ms())]
    seed, sid = market.seed, spec.sid
    base_oi = spec.lots_per_trade * spec.trades_per_minute * 500
    lines = []
    for t in ends.tolist():
        u = hash_u01(seed, sid, t, np.arange(5), 31)
        oi = int(base_oi * (1 + 0.2 * math.sin(t / 3.7e8) + 0.02 * (u[0] - 0.5)))
        price = math.exp(float(gen.log_anchor(spec, seed, t // DAY_MS)))
        oi_text = fmt_one(oi, spec.qty_decimals)
        oi_text += "0" * (16 - spec.qty_decimals) if spec.qty_decimals else "." + "0" * 16
        value = f"{oi / 10**spec.qty_decimals * price:.10f}"
        lines.append(
            f"{_stamp(t)},{spec.symbol},{oi_text},"
            f"{value}000000,{1 + u[1] * 2:.8f},{1 + u[2] * 2:.8f},{1 + u[3] * 2:.8f},{0.5 + u[4]:.8f}\n"
        )
    return "".join(lines).encode()


def book_depth_day_csv(market: SimMarket, spec: SymbolSpec, day: int) -> bytes:
    """bookDepth rows: every 30 s, bands -5..-1 and 1..5 percent, cumulative depth and notional."""
    stamps = day * DAY_MS + np.arange(0, DAY_MS, 30_000, dtype=np.int64) + 4_000
    stamps = stamps[(stamps >= spec.onboard_ms) & (stamps < spec.end_ms())]
    seed, sid = market.seed, spec.sid
    lines = []
    bands = (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5)
    scale = spec.lots_per_trade * spec.trades_per_minute / 10**spec.qty_decimals
    for t in stamps.tolist():
        price = math.exp(float(gen.log_anchor(spec, seed, t // DAY_MS)))
        stamp = _stamp(t)
        u = hash_u01(seed, sid, t, np.arange(10), 41)
        for k, band in enumerate(bands):
            depth = scale * abs(band) * (0.8 + 0.4 * u[k])
            lines.append(f"{stamp},{band:.2f},{depth:.8f},{depth * price * (1 + band / 200):.8f}\n")
    return "".join(lines).encode()
