"""Replay stored history through the event bus, in exchange-time order, paced or as fast as possible.

A strategy subscribed to `market_data.kline` / `market_data.trade` gets the same dicts the live sidecar
publishes (`events.event_from_row` shapes; `source` says where the row came from), in the order the live
stream delivers them: a closed kline at its close time, an aggregate trade at its trade time, a trade
before the kline that closes in the same millisecond, symbols in the order given.

Rows are read in time windows (plain values: exact decimal text, epoch ms) and merged with one stable numpy sort per
window; a kline whose close time falls past the window's end waits for the next window. `speed` maps
exchange time to wall time (60 = one hour of history per minute); None replays as fast as possible.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine

from marketdata_assets.binance.intervals import (
    DAY_MS,
    InvalidInputError,
    day_start_ms,
    interval_ms,
    ms_to_datetime,
    validate_symbol,
)
from marketdata_assets.export.read import select_rows
from marketdata_assets.export.tables import table_spec
from streaming.events import EventBus

KLINE_TOPIC, TRADE_TOPIC = "market_data.kline", "market_data.trade"
HOUR_MS = 3_600_000
YIELD_EVERY = 1024  # as fast as possible still lets async handlers run this often
_KLINE_FIELDS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
                 "trades_count", "taker_buy_volume", "taker_buy_quote_volume", "source")
_TRADE_FIELDS = ("agg_id", "price", "quantity", "first_trade_id", "last_trade_id", "trade_time",
                 "is_buyer_maker", "event_time", "source")


@dataclass
class ReplayStats:
    """What a replay published: events per topic, exchange-time span, wall time."""

    klines: int = 0
    trades: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    seconds: float = 0.0

    @property
    def events(self) -> int:
        return self.klines + self.trades

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


MIN_SPEED, MAX_SPEED = 1e-3, 1e6  # a thousandth of real time .. a million times: beyond, 'max' or a mistake


def parse_speed(value: str | float | None) -> float | None:
    """`max` (or None) -> as fast as possible; a positive number -> that many times real time."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "max"):
        return None
    try:
        speed = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"invalid speed {value!r}: expected a positive number or 'max'") from None
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise InvalidInputError(f"invalid speed {value!r}: expected {MIN_SPEED:g}..{MAX_SPEED:g} or 'max'")
    return speed


class Replayer:
    """Publishes stored klines and aggregate trades of [start, end) into `bus`."""

    def __init__(self, engine: Engine, bus: EventBus, *, window_ms: int | None = None) -> None:
        self.engine = engine
        self.bus = bus
        self.window_ms = window_ms

    async def run(self, symbols: Sequence[str], start: date | int, end: date | int, *, interval: str | None = "1m",
                  trades: bool = True, speed: float | None = None) -> ReplayStats:
        """Replay; `start`/`end` are days (end inclusive) or epoch ms (end exclusive). interval None: no klines."""
        wanted = [validate_symbol(s) for s in symbols]
        if not wanted:
            raise InvalidInputError("no symbols given")
        step = interval_ms(interval) if interval is not None else None
        lo = day_start_ms(start) if isinstance(start, date) else int(start)
        hi = day_start_ms(end) + DAY_MS if isinstance(end, date) else int(end)
        if hi <= lo:
            raise InvalidInputError(f"end {end} is not after start {start}")
        if step is None and not trades:
            raise InvalidInputError("nothing to replay: no interval and no trades")
        window = self.window_ms or (HOUR_MS if trades else DAY_MS)
        stats = ReplayStats()
        clock = _Pacer(speed)
        carry: tuple[np.ndarray, list] = (np.empty(0, np.int64), [])
        began = time.perf_counter()

        def load(position: int) -> tuple[list[np.ndarray], list[list]]:
            upper = min(hi, position + window)
            blocks_keys: list[np.ndarray] = []
            blocks_events: list[list] = []
            for rank, symbol in enumerate(wanted):
                if trades:
                    k, e = self._trades(symbol, position, upper, rank, len(wanted))
                    blocks_keys.append(k)
                    blocks_events.append(e)
                if step is not None:
                    # klines are published when they close: those opening in the window
                    k, e = self._klines(symbol, interval, position, upper, rank, len(wanted))
                    blocks_keys.append(k)
                    blocks_events.append(e)
            return blocks_keys, blocks_events

        position = lo
        loop = asyncio.get_running_loop()
        # the next window is read while this one is published (the database wait releases the GIL)
        with ThreadPoolExecutor(max_workers=1) as reader:
            pending = loop.run_in_executor(reader, load, position)
            while position < hi or len(carry[1]):
                upper = min(hi, position + window)
                keys, events = carry
                blocks_keys, blocks_events = [keys], [events]
                if position < hi:
                    got_keys, got_events = await pending
                    blocks_keys += got_keys
                    blocks_events += got_events
                    if upper < hi:
                        pending = loop.run_in_executor(reader, load, upper)
                position, carry = upper, await self._merge(blocks_keys, blocks_events, upper, hi, stats, clock)
        stats.seconds = time.perf_counter() - began
        return stats

    async def _merge(self, blocks_keys: list[np.ndarray], blocks_events: list[list], upper: int, hi: int,
                     stats: ReplayStats, clock: _Pacer) -> tuple[np.ndarray, list]:
        """Publish what is due before `upper`; returns what must wait for the next window."""
        all_keys = np.concatenate(blocks_keys)
        all_events = [event for block in blocks_events for event in block]
        order = np.argsort(all_keys, kind="stable")
        # what closes at or after the window's end waits for the rows of the next window
        limit = _key(upper, 0, 0, 1) if upper < hi else np.iinfo(np.int64).max
        cut = int(np.searchsorted(all_keys[order], limit))
        ready, later = order[:cut], order[cut:]
        await self._publish([all_events[i] for i in ready], all_keys[ready], stats, clock)
        return all_keys[later], [all_events[i] for i in later]

    async def _publish(self, events: list[tuple[str, dict[str, Any]]], keys: np.ndarray, stats: ReplayStats,
                       clock: _Pacer) -> None:
        publish = self.bus.publish
        if len(keys):
            kinds = (keys >> (_SHIFT - 2)) & 3
            klines = int(np.count_nonzero(kinds == 1))
            stats.klines += klines
            stats.trades += len(keys) - klines
            first, last = int(keys[0] >> _SHIFT), int(keys[-1] >> _SHIFT)
            stats.first_ms = first if stats.first_ms is None else stats.first_ms
            stats.last_ms = last
        if clock.speed is None:
            for offset in range(0, len(events), YIELD_EVERY):
                for topic, event in events[offset:offset + YIELD_EVERY]:
                    publish(topic, event)
                await asyncio.sleep(0)  # async handlers scheduled by the bus get to run
            return
        for (topic, event), at in zip(events, (keys >> _SHIFT).tolist(), strict=True):
            await clock.wait_until(at)
            publish(topic, event)
        await asyncio.sleep(0)

    def _rows(self, table: str, names: Sequence[str], symbol: str, lo: int, hi: int,
              interval: str | None = None) -> list[tuple]:
        """Plain rows (decimal text, epoch ms, bools) in the table's order: exactly what the events carry."""
        spec = table_spec(table)
        columns = [spec.table.c[name] for name in names]
        with self.engine.connect() as conn:
            query = select_rows(spec, columns, conn.dialect.name == "postgresql", symbol, ms_to_datetime(lo),
                                ms_to_datetime(hi), interval)
            rows = conn.execute(query).all()
        return rows

    def _klines(self, symbol: str, interval: str, lo: int, hi: int, rank: int,
                count: int) -> tuple[np.ndarray, list]:
        rows = self._rows("klines", _KLINE_FIELDS, symbol, lo, hi, interval)
        events = [
            (KLINE_TOPIC, {"symbol": symbol, "interval": interval, "source": source, "open_time": ot, "open": o,
                           "high": h, "low": lo_, "close": c, "volume": v, "close_time": ct, "quote_volume": qv,
                           "trades_count": n, "taker_buy_volume": tbv, "taker_buy_quote_volume": tbq})
            for ot, o, h, lo_, c, v, ct, qv, n, tbv, tbq, source in rows
        ]
        close = np.fromiter((e["close_time"] for _, e in events), dtype=np.int64, count=len(events))
        return _key(close, 1, rank, count), events

    def _trades(self, symbol: str, lo: int, hi: int, rank: int, count: int) -> tuple[np.ndarray, list]:
        rows = self._rows("agg_trades", _TRADE_FIELDS, symbol, lo, hi)
        events = [
            (TRADE_TOPIC, {"symbol": symbol, "agg_id": a, "price": p, "quantity": q, "first_trade_id": f,
                           "last_trade_id": last, "trade_time": t, "is_buyer_maker": bool(m), "event_time": e,
                           "source": s})
            for a, p, q, f, last, t, m, e, s in rows
        ]
        at = np.fromiter((e["trade_time"] for _, e in events), dtype=np.int64, count=len(events))
        return _key(at, 0, rank, count), events


# sort key: exchange time in the high bits, then trades before klines, then the symbol's rank
_SHIFT = 12  # 2 bits of kind + up to 1023 symbols; ms times stay far below 2**51


def _key(times: np.ndarray | int, kind: int, rank: int, count: int) -> np.ndarray:
    if count >= 1 << (_SHIFT - 2):
        raise InvalidInputError(f"too many symbols for one replay ({count}); at most {(1 << (_SHIFT - 2)) - 1}")
    return (np.asarray(times, dtype=np.int64) << _SHIFT) | (kind << (_SHIFT - 2)) | rank


class _Pacer:
    """Maps exchange time to wall time at `speed`; the first event sets the origin."""

    def __init__(self, speed: float | None) -> None:
        self.speed = speed
        self._origin: tuple[int, float] | None = None

    async def wait_until(self, exchange_ms: int) -> None:
        now = time.monotonic()
        if self._origin is None:
            self._origin = (exchange_ms, now)
            return
        assert self.speed is not None
        due = self._origin[1] + (exchange_ms - self._origin[0]) / 1000.0 / self.speed
        if due - now > 0.001:
            await asyncio.sleep(due - now)


def replay(engine: Engine, bus: EventBus, symbols: Sequence[str], start: date | int, end: date | int, *,
           interval: str | None = "1m", trades: bool = True, speed: float | None = None) -> ReplayStats:
    """Blocking `Replayer.run` in its own event loop (scripts; inside a loop, await `Replayer.run`)."""
    return asyncio.run(Replayer(engine, bus).run(symbols, start, end, interval=interval, trades=trades,
                                                 speed=speed))
