"""Filling what an outage left behind, from REST: kline bars by time, aggregate trades by id.

Every down window becomes a `stream_gaps` row per stream (state open). Klines and trades are then
fetched and queued like stream rows (source "rest"), and the gap row is marked filled once they are
queued behind them (the writer commits in order, so a "filled" row is never committed before its data).
Depth, mark price and tickers have no history on REST: their gaps are recorded as not_fillable (the
book itself resyncs from a snapshot). A fill that fails is marked failed with the error; the Dagster
repair sensor picks those up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from marketdata_assets.binance.intervals import interval_ms
from streaming.metrics import Metrics
from streaming.streams import StreamSpec
from streaming.trades import Seen, TradeIds

log = logging.getLogger(__name__)

RowSink = Callable[[str, tuple], Awaitable[None]]
AGG_PAGE = 1000


def trade_row(trade: dict[str, Any], symbol: str, source: str = "rest") -> tuple:
    """A REST aggTrades object -> the writer's agg_trades row."""
    return (symbol, int(trade["a"]), trade["p"], trade["q"], int(trade["f"]), int(trade["l"]), int(trade["T"]),
            bool(trade["m"]), None, source)


class GapFiller:
    def __init__(self, rest: Any, sink: RowSink, metrics: Metrics | None = None) -> None:
        self.rest = rest
        self.sink = sink
        self.metrics = metrics or Metrics()
        self.trade_ids: dict[str, TradeIds] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task] = set()
        self.open_gaps = 0

    def ids(self, symbol: str) -> TradeIds:
        tracker = self.trade_ids.get(symbol)
        if tracker is None:
            tracker = self.trade_ids[symbol] = TradeIds(symbol)
        return tracker

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def idle(self) -> None:
        """Wait until every fill started so far has finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------------ gap rows

    async def _gap(self, spec: StreamSpec, start_ms: int, end_ms: int | None, reason: str, state: str,
                   rows: int = 0, attempts: int = 0, error: str | None = None) -> None:
        await self.sink("gaps", (spec.symbol, spec.name, spec.data_type, spec.interval or "", start_ms, end_ms,
                                 reason, state, rows, attempts, error))

    async def gap_opened(self, spec: StreamSpec, start_ms: int, reason: str) -> None:
        self.open_gaps += 1
        self.metrics.gaps_opened.inc()
        self.metrics.gaps_open.set(self.open_gaps)
        await self._gap(spec, start_ms, None, reason, "open")

    async def gap_deferred(self, spec: StreamSpec, start_ms: int, end_ms: int, reason: str, why: str) -> None:
        """A window not fetched here (too long for inline REST): recorded as failed for the repair sensor."""
        self.metrics.gaps_failed.inc()
        await self._gap(spec, start_ms, end_ms, reason, "failed", 0, 0, why)

    async def gap_closed(self, spec: StreamSpec, start_ms: int, end_ms: int, reason: str) -> None:
        """The stream is back: fill the window if REST has its data, and record the outcome."""
        try:
            if spec.data_type == "kline":
                rows = await self.fill_klines(spec, start_ms, end_ms)
            elif spec.data_type == "trade":
                rows = await self.catch_up_trades(spec.symbol, start_ms, end_ms)
            else:
                await self._gap(spec, start_ms, end_ms, reason, "not_fillable")
                return
        except Exception as exc:  # noqa: BLE001 - recorded for the repair sensor, the stream goes on
            log.warning("could not fill %s gap %d..%d from REST: %s", spec.name, start_ms, end_ms, exc)
            self.metrics.gaps_failed.inc()
            await self._gap(spec, start_ms, end_ms, reason, "failed", 0, 1, str(exc)[:500])
        else:
            self.metrics.gaps_filled.inc()
            await self._gap(spec, start_ms, end_ms, reason, "filled", rows, 1)
        finally:
            self.open_gaps = max(0, self.open_gaps - 1)
            self.metrics.gaps_open.set(self.open_gaps)

    # ------------------------------------------------------------------ klines

    async def fill_klines(self, spec: StreamSpec, start_ms: int, end_ms: int) -> int:
        """Closed bars that could have closed during [start_ms, end_ms] (REST leaves out the open bar)."""
        assert spec.interval is not None
        step = interval_ms(spec.interval)
        first_open = (start_ms // step - 1) * step  # the bar closing right after the last message too
        last_open = (end_ms // step + 1) * step
        raw = await asyncio.to_thread(self.rest.klines, spec.symbol, spec.interval, first_open, last_open)
        lines = [line for line in raw.csv.decode("ascii").splitlines() if line]
        for line in lines:
            await self.sink("klines", (spec.symbol, spec.interval, "rest", line + "\n"))
        return len(lines)

    # ------------------------------------------------------------------ aggregate trades

    def lock(self, symbol: str) -> asyncio.Lock:
        lock = self._locks.get(symbol)
        if lock is None:
            lock = self._locks[symbol] = asyncio.Lock()
        return lock

    async def _store_page(self, symbol: str, page: list[dict[str, Any]]) -> int:
        tracker = self.ids(symbol)
        stored = 0
        for trade in page:
            if tracker.see(int(trade["a"])) is not Seen.DUPLICATE:
                await self.sink("agg_trades", trade_row(trade, symbol))
                stored += 1
        self.metrics.trade_ids_filled.inc(stored)
        return stored

    async def fill_holes(self, symbol: str) -> int:
        """Fetch every missing id of `symbol` by fromId until no hole is left (or REST has no more)."""
        tracker = self.ids(symbol)
        stored = 0
        async with self.lock(symbol):
            while tracker.holes:
                first, last = tracker.holes[0]
                page = await asyncio.to_thread(self.rest.agg_trades, symbol, from_id=first, limit=AGG_PAGE)
                page = [t for t in page if int(t["a"]) <= last]
                if not page:
                    log.warning("%s: REST has no aggregate trades %d..%d; leaving the hole", symbol, first, last)
                    tracker.holes.pop(0)
                    raise LookupError(f"{symbol} aggregate trades {first}..{last} not available from REST")
                stored += await self._store_page(symbol, page)
        return stored

    async def catch_up_trades(self, symbol: str, since_ms: int, until_ms: int) -> int:
        """After an outage: every trade after the last id seen, up to now; with no id seen yet, the
        trades between `since_ms` and `until_ms` (exchange clock)."""
        tracker = self.ids(symbol)
        stored = 0
        async with self.lock(symbol):
            if tracker.last_id is None:
                trades = await asyncio.to_thread(
                    lambda: list(self.rest.agg_trades_range(symbol, since_ms, max(until_ms + 1, since_ms + 1))))
                stored += await self._store_page(symbol, trades)
            else:
                while True:
                    cursor = tracker.last_id + 1
                    page = await asyncio.to_thread(self.rest.agg_trades, symbol, from_id=cursor, limit=AGG_PAGE)
                    stored += await self._store_page(symbol, page)
                    if len(page) < AGG_PAGE:
                        break
        if tracker.holes:
            stored += await self.fill_holes(symbol)
        return stored
