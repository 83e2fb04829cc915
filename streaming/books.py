"""Order books of every depth-subscribed symbol: snapshots on demand, top-N stored at a cadence.

Each symbol syncs on its own (orderbook.BookSync); a break refetches that symbol's snapshot only.
Snapshots come from REST `/fapi/v1/depth?limit=1000` in a worker thread (the REST client is sync and
budgets its weight). Every `interval` seconds the top `depth` levels of each live book that changed
are queued for storage and published as `market_data.depth`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from streaming.messages import DepthUpdate
from streaming.metrics import Metrics
from streaming.orderbook import BookSync, Outcome, SyncState

log = logging.getLogger(__name__)

SnapshotFetcher = Callable[[str], Awaitable[dict[str, Any]]]
RowSink = Callable[[str, tuple], Awaitable[None]]

NEEDS_SNAPSHOT = (Outcome.BUFFERED, Outcome.GAP, Outcome.NEED_SNAPSHOT)


class BookManager:
    def __init__(self, fetch_snapshot: SnapshotFetcher, sink: RowSink | None, *, depth: int = 20,
                 interval: float = 1.0, metrics: Metrics | None = None,
                 publish: Callable[[str, tuple], None] | None = None, retry_delay: float = 0.2) -> None:
        self.fetch_snapshot = fetch_snapshot
        self.sink = sink
        self.depth = depth
        self.interval = interval
        self.metrics = metrics or Metrics()
        self.publish = publish
        self.retry_delay = retry_delay
        self.books: dict[str, BookSync] = {}
        self._fetching: dict[str, asyncio.Task] = {}
        self._stored_id: dict[str, int | None] = {}
        self._task: asyncio.Task | None = None
        self.snapshot_errors = 0

    def add(self, symbol: str) -> None:
        self.books.setdefault(symbol, BookSync(symbol))

    def remove(self, symbol: str) -> None:
        self.books.pop(symbol, None)
        task = self._fetching.pop(symbol, None)
        if task is not None:
            task.cancel()

    def on_event(self, event: DepthUpdate) -> Outcome:
        sync = self.books.get(event.symbol)
        if sync is None:
            sync = self.books[event.symbol] = BookSync(event.symbol)
        outcome = sync.feed(event)
        if outcome is Outcome.GAP:
            self.metrics.resyncs.inc(1, event.symbol)
            log.warning("%s book: pu %d != last u; resyncing this symbol", event.symbol,
                        event.prev_final_update_id)
        if outcome in NEEDS_SNAPSHOT and event.symbol not in self._fetching:
            self._fetching[event.symbol] = asyncio.create_task(self._resync(sync), name=f"book-{event.symbol}")
        return outcome

    async def _resync(self, sync: BookSync) -> None:
        try:
            attempt = 0
            while self.books.get(sync.symbol) is sync and sync.state is SyncState.WAITING:
                try:
                    snapshot = await self.fetch_snapshot(sync.symbol)
                except Exception as exc:  # noqa: BLE001 - REST trouble: retry with backoff
                    self.snapshot_errors += 1
                    log.warning("%s depth snapshot failed: %s", sync.symbol, exc)
                    attempt += 1
                    await asyncio.sleep(min(10.0, self.retry_delay * 2 ** attempt))
                    continue
                outcome = sync.apply_snapshot(int(snapshot["lastUpdateId"]), snapshot["bids"], snapshot["asks"],
                                              snapshot.get("E"))
                if outcome is Outcome.GAP:
                    self.metrics.resyncs.inc(1, sync.symbol)
                if outcome in (Outcome.NEED_SNAPSHOT, Outcome.GAP):
                    attempt += 1
                    await asyncio.sleep(min(5.0, self.retry_delay * attempt))
        finally:
            self._fetching.pop(sync.symbol, None)

    # ------------------------------------------------------------------ storage cadence

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._cadence(), name="book-cadence")

    async def stop(self) -> None:
        for task in [*self._fetching.values(), *([self._task] if self._task else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._fetching.clear()
        self._task = None

    async def _cadence(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.store_tops()

    def top_row(self, sync: BookSync) -> tuple:
        bids, asks = sync.book.top(self.depth)
        return (sync.symbol, sync.last_update_id, sync.last_event_time, self.depth,
                orjson.dumps(bids).decode(), orjson.dumps(asks).decode())

    async def store_tops(self) -> int:
        """Queue the top-N of every live book that changed since last time; returns how many."""
        stored = 0
        for symbol, sync in list(self.books.items()):
            if not sync.live or self._stored_id.get(symbol) == sync.last_update_id:
                continue
            row = self.top_row(sync)
            self._stored_id[symbol] = sync.last_update_id
            if self.sink is not None:
                await self.sink("book", row)
            if self.publish is not None:
                self.publish("book", row)
            stored += 1
        return stored

    def describe(self) -> dict[str, dict]:
        return {symbol: sync.describe() for symbol, sync in self.books.items()}
