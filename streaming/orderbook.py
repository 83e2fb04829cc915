"""Local order books kept in sync exactly as SPEC B.5 (the USD-M algorithm, not spot's).

Pure logic, no I/O: the book manager (streaming/books.py) feeds it events and REST snapshots. Each
symbol has its own `BookSync`, so a broken sequence resyncs that symbol only (a known failure of peers
is one bad book resetting every book).

The rules, in order:
1. buffer events until a snapshot arrives;
2. drop events with u < lastUpdateId;
3. the first event applied must have U <= lastUpdateId <= u (else the snapshot is too old: fetch again);
4. after that every event's pu must equal the previous event's u (never check U == prev u + 1: the ids
   come from one sequence shared by all symbols);
5. quantities are absolute, "0" removes the level, removing a missing level is normal.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from enum import Enum

from streaming.messages import DepthUpdate

MAX_BUFFERED_EVENTS = 10_000


class Outcome(Enum):
    BUFFERED = "buffered"          # waiting for a snapshot
    APPLIED = "applied"
    STALE = "stale"                # older than the book (before the snapshot, or a duplicate)
    GAP = "gap"                    # pu chain broken: the book was dropped, a snapshot is needed
    NEED_SNAPSHOT = "need_snapshot"  # the snapshot is older than the first event we have


class SyncState(Enum):
    WAITING = "waiting"    # no usable book; buffering events until a snapshot arrives
    BRIDGING = "bridging"  # snapshot loaded; waiting for the event with U <= lastUpdateId <= u
    LIVE = "live"


def _is_zero(quantity: str) -> bool:
    # "0", "0.000", "0E-8" style: every digit is zero. Cheaper than Decimal on the hot path.
    return quantity.strip("0.") == "" or quantity.strip("0.").startswith(("E", "e"))


class LocalBook:
    """Price levels as exact strings; sorting happens only when the top is read."""

    __slots__ = ("bids", "asks")

    def __init__(self) -> None:
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def load(self, bids: Iterable[Iterable[str]], asks: Iterable[Iterable[str]]) -> None:
        self.clear()
        self.apply(bids, asks)

    def apply(self, bids: Iterable[Iterable[str]], asks: Iterable[Iterable[str]]) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, quantity in levels:
                if _is_zero(quantity):
                    side.pop(price, None)
                else:
                    side[price] = quantity

    def top(self, depth: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The best `depth` bids (descending) and asks (ascending) as (price, quantity) strings."""
        bid_prices = heapq.nlargest(depth, self.bids, key=float)
        ask_prices = heapq.nsmallest(depth, self.asks, key=float)
        return ([(p, self.bids[p]) for p in bid_prices], [(p, self.asks[p]) for p in ask_prices])


class BookSync:
    """One symbol's book and its synchronisation state."""

    def __init__(self, symbol: str, max_buffer: int = MAX_BUFFERED_EVENTS) -> None:
        self.symbol = symbol
        self.book = LocalBook()
        self.state = SyncState.WAITING
        self.buffer: deque[DepthUpdate] = deque(maxlen=max_buffer)
        self.snapshot_id: int | None = None
        self.last_update_id: int | None = None
        self.last_event_time: int | None = None
        self.resyncs = 0
        self.applied = 0

    @property
    def live(self) -> bool:
        return self.state is SyncState.LIVE

    def _drop_book(self) -> None:
        self.book.clear()
        self.state = SyncState.WAITING
        self.snapshot_id = None
        self.last_update_id = None

    def feed(self, event: DepthUpdate) -> Outcome:
        """Process one diff event (from the stream, or replayed from the buffer)."""
        if self.state is SyncState.WAITING:
            self.buffer.append(event)
            return Outcome.BUFFERED
        if self.state is SyncState.BRIDGING:
            assert self.snapshot_id is not None
            if event.final_update_id < self.snapshot_id:
                return Outcome.STALE
            if event.first_update_id > self.snapshot_id:
                # Events between the snapshot and this one are missing: the snapshot is too old.
                self._drop_book()
                self.buffer.append(event)
                return Outcome.NEED_SNAPSHOT
            self._apply(event)
            self.state = SyncState.LIVE
            return Outcome.APPLIED
        # LIVE
        assert self.last_update_id is not None
        if event.final_update_id <= self.last_update_id:
            return Outcome.STALE  # a duplicate (reconnect or rotation overlap)
        if event.prev_final_update_id != self.last_update_id:
            self._drop_book()
            self.resyncs += 1
            self.buffer.append(event)
            return Outcome.GAP
        self._apply(event)
        return Outcome.APPLIED

    def _apply(self, event: DepthUpdate) -> None:
        self.book.apply(event.bids, event.asks)
        self.last_update_id = event.final_update_id
        self.last_event_time = event.event_time
        self.applied += 1

    def apply_snapshot(self, last_update_id: int, bids: Iterable[Iterable[str]],
                       asks: Iterable[Iterable[str]], event_time: int | None = None) -> Outcome:
        """Load a REST snapshot and replay the buffer through it.

        Returns APPLIED when the book is live or waiting for its bridging event, NEED_SNAPSHOT when the
        snapshot is older than the buffered events (fetch another), GAP if the buffer itself breaks.
        """
        self.book.load(bids, asks)
        self.snapshot_id = last_update_id
        self.last_update_id = last_update_id
        self.last_event_time = event_time
        self.state = SyncState.BRIDGING
        pending = list(self.buffer)
        self.buffer.clear()
        result = Outcome.APPLIED
        for index, event in enumerate(pending):
            outcome = self.feed(event)
            if outcome in (Outcome.NEED_SNAPSHOT, Outcome.GAP):
                # feed() already re-buffered this event; keep the ones after it too.
                self.buffer.extend(pending[index + 1:])
                return outcome
        return result

    def describe(self) -> dict:
        return {
            "state": self.state.value, "last_update_id": self.last_update_id,
            "buffered": len(self.buffer), "resyncs": self.resyncs, "applied": self.applied,
        }
