"""Deterministic, vectorised generation of one UTC day of 1m bars for one symbol (pure functions).

Any day is computed on its own: the day's open and close prices come from a hash of (seed, symbol, day)
(`log_anchor`), and the minutes walk between them as a Brownian bridge, so consecutive days join up
without generating from the listing. Everything is integer: prices in units of 10**-price_decimals on the
tick grid, quantities in lots, so aggregating 1m bars into any interval is exact.

Trade ids are consecutive across days because every full or partial day holds exactly
`spec.trades_per_day` trades and `spec.aggs_per_day` aggregate trades (distributed over its minutes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from marketdata_sim.fmt import hash_u01
from marketdata_sim.symbols import DAY_MS, MARK_DECIMALS, SymbolSpec

MINUTE_MS = 60_000
PRICE_COLUMNS = ("open", "high", "low", "close")
SUM_COLUMNS = ("volume", "quote", "count", "tbv", "tbq")
BAR_COLUMNS = ("open_time", *PRICE_COLUMNS, *SUM_COLUMNS)
KINDS = ("trade", "mark", "index", "premium")
SAMPLES_PER_MINUTE = {"mark": 60, "index": 60, "premium": 12}

Bars = dict[str, np.ndarray]
# (start_ms, end_ms, symbols or None for all): bars opening in [start, end) do not exist
Outage = tuple[int, int, frozenset[str] | None]


def empty_bars() -> Bars:
    return {c: np.zeros(0, np.int64) for c in BAR_COLUMNS}


def log_anchor(spec: SymbolSpec, seed: int, day: np.ndarray | int) -> np.ndarray:
    """Log price at 00:00 UTC of `day` (days since epoch): slow cycles plus daily hash noise."""
    d = np.asarray(day, dtype=np.float64)
    di = np.asarray(day, dtype=np.int64)
    phases = hash_u01(seed, spec.sid, np.arange(3)) * 2 * math.pi
    value = (
        math.log(spec.base_price)
        + 0.45 * np.sin(2 * math.pi * d / 1100 + phases[0])
        + 0.2 * np.sin(2 * math.pi * d / 230 + phases[1])
        + 0.08 * np.sin(2 * math.pi * d / 37 + phases[2])
        + 0.03 * (hash_u01(seed, spec.sid, di, 7) - 0.5)
    )
    return value


def present_mask(spec: SymbolSpec, open_times: np.ndarray, outages: Sequence[Outage]) -> np.ndarray:
    """Minutes that exist: listed, not delisted, not inside an outage window."""
    mask = (open_times >= spec.onboard_ms) & (open_times < spec.end_ms())
    for start, end, symbols in outages:
        if symbols is not None and spec.symbol not in symbols:
            continue
        mask &= ~((open_times >= start) & (open_times < end))
    return mask


def _distribute(total: int, weights: np.ndarray) -> np.ndarray:
    """Split `total` into integer parts proportional to int `weights`, exactly (largest remainders)."""
    wsum = int(weights.sum())
    if wsum == 0 or total == 0:
        return np.zeros(len(weights), np.int64)
    scaled = weights.astype(np.int64) * np.int64(total)
    parts = scaled // wsum
    remainder = scaled % wsum
    left = total - int(parts.sum())
    if left > 0:
        order = np.argsort(-remainder, kind="stable")[:left]
        parts[order] += 1
    return parts


def _cut_sizes(rng: np.random.Generator, total: int, parts: int) -> np.ndarray:
    """`total` split into `parts` positive integers at random cut points."""
    if parts <= 1:
        return np.array([total], np.int64)
    cuts = np.sort(rng.choice(total - 1, parts - 1, replace=False) + 1)
    return np.diff(np.concatenate([[0], cuts, [total]])).astype(np.int64)


def trade_day(spec: SymbolSpec, seed: int, day: int, outages: Sequence[Outage]) -> Bars | None:
    """The 1m trade klines of one UTC day (days since epoch), or None when the symbol has no bar that day.

    Extra columns beyond BAR_COLUMNS: `trade_id0` (first trade id of the minute), `agg_id0`, `aggs`.
    """
    t0 = day * DAY_MS
    open_times = t0 + np.arange(1440, dtype=np.int64) * MINUTE_MS
    present = present_mask(spec, open_times, outages)
    if not present.any():
        return None
    rng = np.random.default_rng([seed, spec.sid, day, 0])
    tick = spec.tick_units
    unit = 10.0**-spec.price_decimals
    a0, a1 = log_anchor(spec, seed, np.array([day, day + 1]))
    steps = rng.standard_normal(1440) * spec.sigma
    walk = np.concatenate([[0.0], np.cumsum(steps)])
    frac = np.arange(1441) / 1440.0
    log_path = a0 + (a1 - a0) * frac + walk - frac * walk[-1]
    path = np.maximum(np.rint(np.exp(log_path) / unit / tick).astype(np.int64), 1) * tick
    opens, closes = path[:-1].copy(), path[1:].copy()
    sigma_ticks = np.exp(log_path[:-1]) * spec.sigma / unit / tick
    wick_hi = np.floor(np.abs(rng.standard_normal(1440)) * sigma_ticks * 0.6).astype(np.int64) * tick
    wick_lo = np.floor(np.abs(rng.standard_normal(1440)) * sigma_ticks * 0.6).astype(np.int64) * tick
    highs = np.maximum(opens, closes) + wick_hi
    lows = np.maximum(np.minimum(opens, closes) - wick_lo, tick)

    idle = rng.random(1440) < spec.zero_volume_prob
    active = present & ~idle
    # trades: every active minute at least one, the day total exactly trades_per_day
    weights = (rng.lognormal(0.0, 0.6, 1440) * 1_000_000).astype(np.int64) * active
    n_active = int(active.sum())
    counts = active.astype(np.int64) + _distribute(spec.trades_per_day - n_active, weights)
    aggs = active.astype(np.int64) + _distribute(spec.aggs_per_day - n_active, np.maximum(counts - 1, 0))
    per_trade = 1 + rng.poisson(max(spec.lots_per_trade - 1, 0), 1440).astype(np.int64)
    volume = counts * per_trade
    taker = (volume * rng.uniform(0.3, 0.7, 1440)).astype(np.int64)
    vwap = lows + ((highs - lows) * rng.uniform(0.25, 0.75, 1440)).astype(np.int64)
    shift = spec.quote_decimals - spec.price_decimals - spec.qty_decimals
    quote, tb_quote = _quote(volume, vwap, shift), _quote(taker, vwap, shift)

    if not active.all():
        # a minute without trades repeats the last traded close (SPEC D.2)
        idx = np.where(active, np.arange(1440), -1)
        last = np.maximum.accumulate(np.concatenate([[-1], idx[:-1]]))
        flat = np.where(last >= 0, closes[np.maximum(last, 0)], opens)
        for col in (opens, highs, lows, closes):
            col[~active] = flat[~active]
    trade_base = 1 + (day - spec.onboard_ms // DAY_MS) * spec.trades_per_day
    agg_base = 1 + (day - spec.onboard_ms // DAY_MS) * spec.aggs_per_day
    bars = {
        "open_time": open_times, "open": opens, "high": highs, "low": lows, "close": closes,
        "volume": volume, "quote": quote, "count": counts, "tbv": taker, "tbq": tb_quote,
        "trade_id0": trade_base + np.cumsum(counts) - counts,
        "agg_id0": agg_base + np.cumsum(aggs) - aggs,
        "aggs": aggs,
    }
    return {k: v[present] for k, v in bars.items()}


def _quote(qty: np.ndarray, price: np.ndarray, shift: int) -> np.ndarray:
    product = qty * price
    if shift >= 0:
        return product * 10**shift
    div = 10**-shift
    return (product + div // 2) // div


def price_day(spec: SymbolSpec, seed: int, day: int, kind: str, trade: Bars) -> Bars:
    """Mark, index or premium-index 1m klines for the minutes of `trade` (8 decimals, volumes 0)."""
    n = len(trade["open_time"])
    rng = np.random.default_rng([seed, spec.sid, day, KINDS.index(kind)])
    zeros = np.zeros(n, np.int64)
    if kind == "premium":
        centre = rng.normal(5_000, 20_000, n)
        o = np.rint(centre + rng.normal(0, 8_000, n)).astype(np.int64)
        c = np.rint(centre + rng.normal(0, 8_000, n)).astype(np.int64)
        spread = np.abs(rng.normal(0, 6_000, (2, n))).astype(np.int64)
    else:
        scale = 10 ** (MARK_DECIMALS - spec.price_decimals)
        noise = max(1, int(spec.base_price * 10**MARK_DECIMALS * 2e-5))
        bias = noise // 2 if kind == "mark" else -noise // 2
        o = trade["open"] * scale + bias + rng.integers(-noise, noise + 1, n)
        c = trade["close"] * scale + bias + rng.integers(-noise, noise + 1, n)
        inner_hi = trade["high"] * scale - rng.integers(0, noise + 1, n)
        inner_lo = trade["low"] * scale + rng.integers(0, noise + 1, n)
        spread = np.stack([np.maximum(inner_hi - np.maximum(o, c), 0), np.maximum(np.minimum(o, c) - inner_lo, 0)])
    high = np.maximum(o, c) + spread[0]
    low = np.minimum(o, c) - spread[1]
    if kind != "premium":
        low = np.maximum(low, 1)
    return {
        "open_time": trade["open_time"], "open": o, "high": high, "low": low, "close": c,
        "volume": zeros, "quote": zeros, "count": np.full(n, SAMPLES_PER_MINUTE[kind], np.int64),
        "tbv": zeros, "tbq": zeros,
    }


def partial_bar(bar: dict[str, int], elapsed_ms: int, kind: str, tick: int) -> dict[str, int]:
    """The in-progress state of a 1m bar `elapsed_ms` after its open (REST's last, changing element)."""
    k, full = elapsed_ms, MINUTE_MS
    o, h, low, c = bar["open"], bar["high"], bar["low"], bar["close"]
    step = tick if kind == "trade" else 1
    close = o + ((c - o) * k // full) // step * step
    high = max(o, close) + ((h - max(o, c)) * k // full) // step * step
    low_p = min(o, close) - ((min(o, c) - low) * k // full) // step * step
    out = dict(bar)
    out.update(open=o, high=high, low=low_p, close=close)
    if kind == "trade":
        for col in SUM_COLUMNS:
            out[col] = bar[col] * k // full
        if out["volume"] > 0:
            out["count"] = max(out["count"], 1)
    else:
        per_sample = full // SAMPLES_PER_MINUTE[kind]
        out["count"] = min(SAMPLES_PER_MINUTE[kind], 1 + k // per_sample)
    return out


def day_agg_trades(spec: SymbolSpec, seed: int, trade: Bars, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Aggregate trades of the minutes `rows` (indices into `trade`; default all), deterministic per minute.

    Per minute: ids consecutive from the minute's `agg_id0`, trade ids covering exactly its `count`
    trades, quantities summing to its volume, prices inside [low, high] starting at open and ending at close.
    """
    if rows is None:
        rows = np.flatnonzero(trade["aggs"] > 0)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("a", "p", "q", "f", "l", "T", "m")}
    for i in rows:
        m = int(trade["aggs"][i])
        if m == 0:
            continue
        ot = int(trade["open_time"][i])
        rng = np.random.default_rng([seed, spec.sid, ot, 9])
        n_trades = _cut_sizes(rng, int(trade["count"][i]), m)
        qty = _cut_sizes(rng, int(trade["volume"][i]), m)
        lo, hi, tick = int(trade["low"][i]), int(trade["high"][i]), spec.tick_units
        prices = lo + rng.integers(0, (hi - lo) // tick + 1, m) * tick
        prices[0] = trade["open"][i]
        prices[-1] = trade["close"][i]
        if m >= 4:
            prices[1], prices[2] = hi, lo
        first = int(trade["trade_id0"][i]) + np.cumsum(n_trades) - n_trades
        parts["a"].append(int(trade["agg_id0"][i]) + np.arange(m, dtype=np.int64))
        parts["p"].append(prices)
        parts["q"].append(qty)
        parts["f"].append(first)
        parts["l"].append(first + n_trades - 1)
        parts["T"].append(ot + np.sort(rng.integers(0, MINUTE_MS, m)))
        parts["m"].append(rng.random(m) < 0.5)
    if not parts["a"]:
        return {k: np.zeros(0, bool if k == "m" else np.int64) for k in parts}
    return {k: np.concatenate(v) for k, v in parts.items()}
