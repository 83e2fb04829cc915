"""Order-book diffs for the depth streams that chain exactly with the REST snapshots of `derived`.

Why this shape: REST `/fapi/v1/depth` (derived.depth_snapshot) is a pure function of time: the book at
`now` has its levels around the last trade price at `now`, each level's quantity changing on its own
epoch grid (2-30 s), and `lastUpdateId = book_update_id(now - 3)`. A WS event covering (t1, t2] must let
a client that took a snapshot anywhere in that window reach the book at t2 (SPEC B.5). So an event carries
every level that *could* have differed inside the window, with its absolute state at t2: levels whose
quantity epoch moved, and every level the moving mid price swept across (appearing or vanishing).
`U`, `u`, `pu` come from the same global id sequence as the snapshots, so the chain and the snapshot agree.

The per-level formulas mirror `derived.order_book` (kept private there); a test checks that a book
rebuilt from snapshot + diffs equals a later REST snapshot, so a divergence cannot go unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marketdata_sim import derived
from marketdata_sim.fmt import fmt_one, hash_u01
from marketdata_sim.market import SimMarket
from marketdata_sim.symbols import DAY_MS, SymbolSpec
from marketdata_sim.timegrid import MINUTE_MS

SNAPSHOT_LAG_MS = 3  # derived.depth_snapshot: T = now - 3


def depth_cap(spec: SymbolSpec) -> int:
    return 300 if spec.zero_volume_prob > 0 else 1000


def mid_ticks(market: SimMarket, spec: SymbolSpec, now: int) -> int:
    """The book's centre (in ticks) at `now`: the last trade price, as derived._latest computes it."""
    tick = spec.tick_units
    t = min(now, spec.end_ms() - 1)
    for _ in range(3):
        bars = market.minute_bars(spec, max(t - DAY_MS, 0), t + 1, "trade", now)
        if len(bars["open_time"]):
            return int(bars["close"][-1]) // tick
        t -= DAY_MS
    return 100


@dataclass
class Side:
    """One side of a full book: tick -> (epoch, qty units)."""

    levels: dict[int, tuple[int, int]]


@dataclass
class Book:
    t: int  # transaction time (epochs), also the `u` time
    now: int  # event time (mid)
    mid: int
    bids: Side
    asks: Side


def _side(market: SimMarket, spec: SymbolSpec, ticks: np.ndarray, side: int, t: int) -> Side:
    seed, sid = market.seed, spec.sid
    period = 2_000 + (hash_u01(seed, sid, ticks, side, 21) * 28_000).astype(np.int64)
    phase = (hash_u01(seed, sid, ticks, side, 22) * period).astype(np.int64)
    epoch = (t + phase) // period
    u = hash_u01(seed, sid, ticks, side, epoch)
    qty = 1 + (u * u * 3 * spec.lots_per_trade).astype(np.int64)
    return Side(dict(zip(ticks.tolist(), zip(epoch.tolist(), qty.tolist(), strict=True), strict=True)))


def full_book(market: SimMarket, spec: SymbolSpec, now: int) -> Book:
    """The whole simulated book (depth_cap levels a side) as REST would show it at `now`."""
    t = now - SNAPSHOT_LAG_MS
    mid = mid_ticks(market, spec, now)
    offs = np.arange(1, depth_cap(spec) + 1, dtype=np.int64)
    bid_ticks = mid - offs + 1
    bid_ticks = bid_ticks[bid_ticks > 0]
    return Book(t, now, mid, _side(market, spec, bid_ticks, 0, t), _side(market, spec, mid + offs, 1, t))


def mid_range(market: SimMarket, spec: SymbolSpec, lo_now: int, hi_now: int) -> tuple[int, int]:
    """Lowest and highest mid over [lo_now, hi_now]: the mid moves monotonically inside a minute."""
    samples = {lo_now, hi_now}
    first = lo_now - lo_now % MINUTE_MS + MINUTE_MS
    for boundary in range(first, hi_now + 1, MINUTE_MS):
        samples.update((boundary - 1, boundary))
    mids = [mid_ticks(market, spec, s) for s in samples]
    return min(mids), max(mids)


def diff_levels(prev: Book, cur: Book, mlo: int, mhi: int, n: int) -> tuple[dict[int, int], dict[int, int]]:
    """Levels (tick -> absolute qty at cur, 0 = removed) a client must apply to go from any book in
    (prev.t, cur.t] to cur."""
    out: list[dict[int, int]] = []
    for side_no, (p, c) in enumerate(((prev.bids, cur.bids), (prev.asks, cur.asks))):
        changed: dict[int, int] = {}
        for tick, (epoch, qty) in c.levels.items():
            old = p.levels.get(tick)
            if old is None or old[0] != epoch:
                changed[tick] = qty
        for tick in p.levels:
            if tick not in c.levels:
                changed[tick] = 0
        if mlo < mhi:
            if side_no == 0:  # bids occupy [mid - n + 1, mid]
                zones = (range(mlo - n + 1, mhi - n + 1), range(mlo + 1, mhi + 1))
            else:  # asks occupy [mid + 1, mid + n]
                zones = (range(mlo + 1, mhi + 1), range(mlo + n + 1, mhi + n + 1))
            for zone in zones:
                for tick in zone:
                    if tick > 0 and tick not in changed:
                        level = c.levels.get(tick)
                        changed[tick] = level[1] if level else 0
        out.append(changed)
    return out[0], out[1]


def fmt_levels(spec: SymbolSpec, levels: dict[int, int], descending: bool = False) -> list[list[str]]:
    tick, p, q = spec.tick_units, spec.price_decimals, spec.qty_decimals
    return [[fmt_one(k * tick, p), fmt_one(v, q)] for k, v in sorted(levels.items(), reverse=descending)]


def top(side: Side, count: int, descending: bool) -> dict[int, int]:
    keys = sorted(side.levels, reverse=descending)[:count]
    return {k: side.levels[k][1] for k in keys}


def update_id(market: SimMarket, spec: SymbolSpec, t: int) -> int:
    return derived.book_update_id(market, spec, t)
