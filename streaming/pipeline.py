"""Frame -> typed event -> de-duplicated, normalised row for the writer (and an event for the bus).

The one hot path of the sidecar. De-duplication is per stream on a key that only grows (aggregate
trade id, depth u, closed-kline open time, event time), which makes reconnect and rotation overlaps
harmless. Malformed frames are counted and logged with a sample (rate-limited), then skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from marketdata_assets.binance.klines import raw_klines_from_stream
from streaming.books import BookManager
from streaming.events import EventBus
from streaming.filler import GapFiller
from streaming.messages import (
    AggTrade,
    BookTicker,
    Control,
    DepthUpdate,
    KlineEvent,
    MalformedFrame,
    MarkPrice,
    Ticker24h,
    decode_frame,
)
from streaming.metrics import Metrics
from streaming.trades import Seen

log = logging.getLogger(__name__)

RowSink = Callable[[str, tuple], Awaitable[None]]
RowSinkNowait = Callable[[str, tuple], bool]  # False: no room now (then the awaitable sink waits)
SAMPLE_LOG_EVERY_S = 10.0


class Pipeline:
    def __init__(self, sink: RowSink | None, books: BookManager, filler: GapFiller, bus: EventBus,
                 metrics: Metrics, sink_nowait: RowSinkNowait | None = None) -> None:
        self.sink = sink
        self.sink_nowait = sink_nowait
        self.books = books
        self.filler = filler
        self.bus = bus
        self.metrics = metrics
        self._last_closed: dict[tuple[str, str], int] = {}
        self._last_event: dict[tuple[str, str], int] = {}
        self._last_sample_log = 0.0
        self.latest_event_ms = 0
        counter = metrics.messages
        self._count = {kind: (lambda k=kind: counter.inc(1, k)) for kind in
                       ("trade", "kline", "depth", "price", "ticker", "book_ticker")}

    async def handle(self, frame: bytes, connection: object | None = None) -> None:
        try:
            message = decode_frame(frame)
        except MalformedFrame as exc:
            self._malformed(exc)
            return
        if isinstance(message, Control):
            if connection is not None and hasattr(connection, "on_control"):
                connection.on_control(message)
            return
        data = message.data
        if type(data) is AggTrade:  # the busiest stream (tens of thousands a second): straight through
            await self._trade(data)
            if connection is not None:
                connection.last_event_ms = data.event_time
        elif isinstance(data, list):
            for item in data:
                await self.on_event(item)
            if data and connection is not None:
                connection.last_event_ms = data[-1].event_time
        else:
            await self.on_event(data)
            if connection is not None:
                connection.last_event_ms = data.event_time

    def _malformed(self, exc: MalformedFrame) -> None:
        self.metrics.malformed.inc()
        now = time.monotonic()
        if now - self._last_sample_log >= SAMPLE_LOG_EVERY_S:
            self._last_sample_log = now
            log.warning("skipped a malformed frame (%d so far): %s", int(self.metrics.malformed.get()), exc)

    async def on_event(self, event: object) -> None:
        if isinstance(event, AggTrade):
            await self._trade(event)
        elif isinstance(event, DepthUpdate):
            self._count["depth"]()
            self.latest_event_ms = event.event_time
            self.books.on_event(event)
        elif isinstance(event, KlineEvent):
            await self._kline(event)
        elif isinstance(event, MarkPrice):
            await self._mark(event)
        elif isinstance(event, Ticker24h):
            await self._ticker(event)
        elif isinstance(event, BookTicker):
            self._count["book_ticker"]()

    async def _put(self, kind: str, row: tuple) -> None:
        # Queue without a coroutine when there is room (nearly always); await only for backpressure.
        if self.sink is not None and (self.sink_nowait is None or not self.sink_nowait(kind, row)):
            await self.sink(kind, row)
        self.bus.publish_row(kind, row)

    async def _trade(self, trade: AggTrade) -> None:
        self.metrics.messages.inc(1, "trade")
        self.latest_event_ms = trade.event_time
        seen = self.filler.ids(trade.symbol).see(trade.agg_id)
        if seen is Seen.DUPLICATE:
            self.metrics.duplicates.inc()
            return
        await self._put("agg_trades", (trade.symbol, trade.agg_id, trade.price, trade.quantity,
                                       trade.first_trade_id, trade.last_trade_id, trade.trade_time,
                                       trade.is_buyer_maker, trade.event_time, "stream"))
        if seen is Seen.AFTER_HOLE:
            self.filler.spawn(self._fill_holes(trade.symbol), f"trade-holes-{trade.symbol}")

    async def _fill_holes(self, symbol: str) -> None:
        try:
            await self.filler.fill_holes(symbol)
        except Exception as exc:  # noqa: BLE001 - logged; the gap stays visible in metrics
            log.warning("%s: filling aggregate trade ids failed: %s", symbol, exc)

    async def _kline(self, event: KlineEvent) -> None:
        self._count["kline"]()
        self.latest_event_ms = event.event_time
        bar = event.bar
        if not bar.closed:
            return
        key = (event.symbol, bar.interval)
        if self._last_closed.get(key, -1) >= bar.open_time:
            self.metrics.duplicates.inc()
            return
        self._last_closed[key] = bar.open_time
        line = raw_klines_from_stream([bar.as_binance()], event.symbol, bar.interval).csv.decode("ascii")
        await self._put("klines", (event.symbol, bar.interval, "stream", line))

    def _newer(self, stream: str, symbol: str, event_time: int) -> bool:
        key = (stream, symbol)
        if self._last_event.get(key, -1) >= event_time:
            self.metrics.duplicates.inc()
            return False
        self._last_event[key] = event_time
        return True

    async def _mark(self, mark: MarkPrice) -> None:
        self._count["price"]()
        if not self._newer("mark", mark.symbol, mark.event_time):
            return
        await self._put("mark_price", (mark.symbol, mark.event_time, mark.mark_price, mark.index_price or None,
                                       mark.estimated_settle_price or None, mark.funding_rate or None,
                                       mark.next_funding_time or None))

    async def _ticker(self, t: Ticker24h) -> None:
        self._count["ticker"]()
        if not self._newer("ticker", t.symbol, t.event_time):
            return
        await self._put("ticker", (t.symbol, t.event_time, t.price_change, t.price_change_percent,
                                   t.weighted_avg_price, t.last_price, t.last_qty, t.open_price, t.high_price,
                                   t.low_price, t.volume, t.quote_volume, t.open_time, t.close_time, t.first_id,
                                   t.last_id, t.count))
