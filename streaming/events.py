"""The event bus: `subscribe("market_data.kline", handler)` in process, bridged through PostgreSQL.

In process, handlers get a dict per event as soon as it is decoded (sync handlers are called inline,
async ones scheduled); a failing handler is logged and never stops the stream. With PUBLISH_EVENTS on,
the writer also sends the committed rows as `NOTIFY market_data` in the same transaction, so another
process (`listen_postgres`) sees exactly what is stored, and only once it is stored.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import psycopg

from marketdata_assets.binance.intervals import InvalidInputError

log = logging.getLogger(__name__)

TOPICS = ("market_data.kline", "market_data.trade", "market_data.depth", "market_data.price",
          "market_data.ticker")
CHANNEL = "market_data"
NOTIFY_LIMIT = 7000  # PostgreSQL refuses NOTIFY payloads of 8000 bytes and more

Handler = Callable[[dict[str, Any]], Awaitable[None] | None]

# writer kind -> topic and field names of its rows (store.KINDS order)
KIND_TOPICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "agg_trades": ("market_data.trade", ("symbol", "agg_id", "price", "quantity", "first_trade_id",
                                          "last_trade_id", "trade_time", "is_buyer_maker", "event_time",
                                          "source")),
    "mark_price": ("market_data.price", ("symbol", "event_time", "mark_price", "index_price",
                                          "estimated_settle_price", "funding_rate", "next_funding_time")),
    "ticker": ("market_data.ticker", ("symbol", "event_time", "price_change", "price_change_percent",
                                       "weighted_avg_price", "last_price", "last_qty", "open_price",
                                       "high_price", "low_price", "volume", "quote_volume", "open_time",
                                       "close_time", "first_id", "last_id", "trade_count")),
    "book": ("market_data.depth", ("symbol", "last_update_id", "event_time", "depth", "bids", "asks")),
    "klines": ("market_data.kline", ("symbol", "interval", "source", "kline")),
}


def event_from_row(kind: str, row: tuple) -> dict[str, Any]:
    """The event dict for one writer row (the same shape in process and across processes)."""
    _, names = KIND_TOPICS[kind]
    event = dict(zip(names, row, strict=True))
    if kind == "klines":
        fields = event.pop("kline").strip().split(",")
        event.update(open_time=int(fields[0]), open=fields[1], high=fields[2], low=fields[3], close=fields[4],
                     volume=fields[5], close_time=int(fields[6]), quote_volume=fields[7],
                     trades_count=int(fields[8]), taker_buy_volume=fields[9], taker_buy_quote_volume=fields[10])
    elif kind == "book":
        for side in ("bids", "asks"):
            if isinstance(event[side], str):
                event[side] = orjson.loads(event[side])
    return event


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {topic: [] for topic in TOPICS}
        self._tasks: set[asyncio.Task] = set()
        self.errors = 0

    def subscribe(self, topic: str, handler: Handler) -> Callable[[], None]:
        """Call `handler(event_dict)` for every event of `topic`; returns an unsubscribe function."""
        if topic not in self._handlers:
            raise InvalidInputError(f"unknown event topic {topic!r}: expected one of {', '.join(TOPICS)}")
        self._handlers[topic].append(handler)
        return lambda: self._handlers[topic].remove(handler) if handler in self._handlers[topic] else None

    def wants(self, topic: str) -> bool:
        return bool(self._handlers.get(topic))

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        for handler in list(self._handlers.get(topic, ())):
            try:
                result = handler(event)
                if result is not None and inspect.isawaitable(result):  # sync handlers: no check
                    task = asyncio.ensure_future(result)
                    self._tasks.add(task)
                    task.add_done_callback(self._done)
            except Exception:  # noqa: BLE001 - a subscriber's bug must not stop the stream
                self.errors += 1
                log.exception("event handler for %s failed", topic)

    def publish_row(self, kind: str, row: tuple) -> None:
        topic = KIND_TOPICS[kind][0]
        if self._handlers.get(topic):
            self.publish(topic, event_from_row(kind, row))

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors += 1
            log.error("async event handler failed: %r", task.exception())


class NotifyBatch:
    """Events of one topic packed into NOTIFY payloads below PostgreSQL's size limit (fewer, larger
    notifications: each costs the listener a wake-up)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._items: list[bytes] = []
        self._size = 0

    def add(self, event: dict[str, Any]) -> bytes | None:
        """Add one event; returns the full payload it pushed out, if any."""
        item = orjson.dumps(event)
        if len(item) > NOTIFY_LIMIT - 64:
            log.debug("event of %d bytes too large for NOTIFY: skipped", len(item))
            return None
        full = self.take() if self._size + len(item) + 64 > NOTIFY_LIMIT else None
        self._items.append(item)
        self._size += len(item) + 1
        return full

    def take(self) -> bytes | None:
        """The payload of the events added since the last one (None when there are none)."""
        if not self._items:
            return None
        payload = b'{"topic":"%s","events":[%s]}' % (self.topic.encode(), b",".join(self._items))
        self._items, self._size = [], 0
        return payload


def notify_payloads(kind: str, rows: list[tuple]) -> list[bytes]:
    """NOTIFY payloads (each < 7000 bytes) carrying these committed rows as events."""
    if kind not in KIND_TOPICS:
        return []
    batch = NotifyBatch(KIND_TOPICS[kind][0])
    payloads = [payload for row in rows if (payload := batch.add(event_from_row(kind, row))) is not None]
    last = batch.take()
    return payloads if last is None else [*payloads, last]


class NotifyPublisher:
    """Every event of a bus sent as `NOTIFY market_data` on its own connection, batched per topic: how
    `marketdata replay --notify` reaches other processes' `listen_postgres`."""

    def __init__(self, conninfo: str) -> None:
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self._batches: dict[str, NotifyBatch] = {}

    def attach(self, bus: EventBus) -> None:
        for topic in TOPICS:
            bus.subscribe(topic, lambda event, topic=topic: self.publish(topic, event))

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        batch = self._batches.get(topic)
        if batch is None:
            batch = self._batches[topic] = NotifyBatch(topic)
        self._send(batch.add(event))

    def flush(self) -> None:
        for batch in self._batches.values():
            self._send(batch.take())

    def close(self) -> None:
        self.flush()
        self.conn.close()

    def _send(self, payload: bytes | None) -> None:
        if payload is not None:
            self.conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload.decode()))


async def listen_postgres(conninfo: str, bus: EventBus, ready: asyncio.Event | None = None) -> None:
    """Forward `NOTIFY market_data` events from another process into `bus` until cancelled."""
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute("LISTEN market_data")
        if ready is not None:
            ready.set()
        async for notification in conn.notifies():
            try:
                message = orjson.loads(notification.payload)
            except orjson.JSONDecodeError:
                log.warning("ignored a non-JSON market_data notification")
                continue
            for event in message.get("events", ()):
                bus.publish(message.get("topic", ""), event)
