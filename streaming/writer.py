"""The batch writer: a bounded buffer between the connections and the database.

Shape (the cryptofeed split, with the known holes closed): connection handlers decode and normalise,
then `await writer.put(kind, row)`; one writer task takes everything buffered, hands it to the store as
one batch, and loops. The writer knows no database: `StreamStore` owns every connection.
- Bounded memory: at most `max_pending` rows wait; `put` then blocks its connection until the writer
  catches up (backpressure into the socket instead of an ever-growing queue, PERFORMANCE.md).
- Batch by size and time: the writer starts as soon as `batch_size` rows wait, or `linger` seconds
  after the first row; while a transaction runs, rows accumulate, so batches grow under load by
  themselves (throughput) and stay tiny when quiet (latency).
- Small batches on the event loop (`StreamStore.fits_small`): handed to `StreamStore.write_small`
  without waiting, one batch in flight per async slot (the next goes out while the previous commits).
  Anything else (large batches, klines, gaps, notifications, a refused row, the database away) waits
  for those in flight and goes to `StreamStore.write` in a worker thread (bench/README.md: measured
  better than both a thread-only writer and pipelined commits on two thread connections).
- Database down: the batch goes to the disk spool; the writer checks the database (a fresh connection
  with a short timeout) after `retry_interval`, doubling up to MAX_RETRY_S while it stays away, replays
  the spool oldest first, then resumes direct writes. The first contact also runs
  `prepare` (the migration): a sidecar started during an outage records into the spool from the start.
- Spool full too (its disk, or its cap): batches are held in memory, in order, and count against
  `max_pending`, so the connections wait (backpressure) instead of memory growing; a connection that
  waits too long is dropped by the exchange, and that window is recorded and filled like any outage.
- Database hung (a frozen server answers nothing, and no server-side timeout fires): a call running
  longer than `stuck_after` seconds is cut off (its socket shut down) and the batch is spooled.
- `close()` flushes everything (to the database, or to the spool if it is down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from marketdata_assets.redact import one_line
from streaming.metrics import Metrics
from streaming.spool import Batch, Spool, SpoolFull
from streaming.store import ASYNC_SLOTS, EVENT_TIME_INDEX, KINDS, KLINES, DatabaseUnavailable, Row, StreamStore

log = logging.getLogger(__name__)

MAX_RETRY_S = 10.0  # the longest wait between two checks of a database that is away
TABLE_OF = {kind: spec[0].name for kind, spec in KINDS.items()} | {KLINES: "kline_data"}
CommitHook = Callable[[Batch], None]


class BatchWriter:
    def __init__(self, store: StreamStore, spool_dir: str | Path, *, metrics: Metrics | None = None,
                 batch_size: int = 2000, max_pending: int = 50_000, linger: float = 0.002,
                 retry_interval: float = 1.0, notify: Callable[[str, list[Row]], list[bytes]] | None = None,
                 on_commit: CommitHook | None = None, spool_max_bytes: int | None = None,
                 prepare: Callable[[], None] | None = None, stuck_after: float = 15.0) -> None:
        self.store = store
        # Notifications ride on the thread path (store.write sends them after the commit).
        self.async_small = notify is None
        self._afree: list[int] = list(range(ASYNC_SLOTS))  # async slots without a small batch in flight
        self._inflight: set[asyncio.Task] = set()
        self.spool = Spool(spool_dir, max_bytes=spool_max_bytes)
        self.prepare = prepare
        self.stuck_after = stuck_after
        store.call_timeout_s = stuck_after
        self.metrics = metrics or Metrics()
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.linger = linger
        self.retry_interval = retry_interval
        self.notify = notify
        self.on_commit = on_commit
        self._pending: dict[str, list[Row]] = {}
        self._pending_rows = 0
        self._has_rows = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._full = asyncio.Event()
        self._added = 0     # rows ever queued
        self._handled = 0   # rows ever committed, rejected or spooled
        self._progress = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._db_lock = threading.Lock()
        self._closing = False
        self.db_up = True
        self._prepared = prepare is None
        self._next_retry = 0.0
        self._failures = 0  # failed checks in a row (the wait between checks doubles)
        self.batches_written = 0
        self._held: list[Batch] = []  # neither database nor spool took these (yet); oldest first
        self._held_rows = 0
        self.spool_full = False
        self._busy_since: float | None = None  # monotonic start of the database call running now
        self.db_stuck = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchdog: asyncio.Task | None = None
        self.metrics.queue_depth.callback = lambda: self._pending_rows
        self.metrics.spool_bytes.callback = self.spool.size_bytes
        self.metrics.db_up.callback = lambda: int(self.db_up)
        self.metrics.db_stuck.callback = lambda: int(self.db_stuck)
        self.metrics.spool_full.callback = lambda: int(self.spool_full)
        self.metrics.rows_held.callback = lambda: self._held_rows

    # ------------------------------------------------------------------ producer side

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def _no_room(self) -> bool:
        return self._pending_rows + self._held_rows >= self.max_pending

    async def put(self, kind: str, row: Row) -> None:
        """Queue one row; waits (backpressure) while the buffer is full."""
        while self._no_room():
            self._room.clear()
            await self._room.wait()
        self._add(kind, row)

    def put_nowait(self, kind: str, row: Row) -> bool:
        """Queue one row if there is room; False otherwise (the caller decides how to wait)."""
        if self._no_room():
            return False
        self._add(kind, row)
        return True

    def _add(self, kind: str, row: Row) -> None:
        bucket = self._pending.get(kind)
        if bucket is None:
            bucket = self._pending[kind] = []
        bucket.append(row)
        self._pending_rows += 1
        self._added += 1
        self._has_rows.set()
        if self._pending_rows >= self.batch_size:
            self._full.set()

    # ------------------------------------------------------------------ writer task

    def start(self) -> None:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            if self.spool or not self._prepared:
                self.db_up = False  # prepare, and replay what a previous run spooled, before anything new
            self._task = asyncio.create_task(self._run(), name="batch-writer")
            self._watchdog = asyncio.create_task(self._watch(), name="batch-writer-watchdog")

    async def _watch(self) -> None:
        """Cut off a database call that hangs (a frozen server): the batch goes to the spool instead."""
        tick = max(0.05, min(1.0, self.stuck_after / 4))
        while True:
            await asyncio.sleep(tick)
            since = self._busy_since
            stuck = since is not None and time.monotonic() - since > self.stuck_after
            if stuck and not self.db_stuck:
                log.warning("a database call has not returned for %.0f s: cutting it off and spooling",
                            self.stuck_after)
                self.store.abort()
            self.db_stuck = stuck

    @contextlib.contextmanager
    def _busy(self):
        self._busy_since = time.monotonic()
        try:
            yield
        finally:
            self._busy_since = None

    async def _run(self) -> None:
        while True:
            if self.db_up:
                await self._has_rows.wait()
            else:
                # Down: look at the database when the retry is due, even when no rows arrive.
                try:
                    await asyncio.wait_for(self._has_rows.wait(), max(0.01, self._next_retry - time.monotonic()))
                except TimeoutError:
                    await self._drain()
                    await asyncio.to_thread(self._recover_if_down)
                    continue
            if not self._closing and self._pending_rows < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.linger)
            while not self._afree and self._inflight:  # every small-batch slot busy: the batch grows
                await asyncio.wait(set(self._inflight), return_when=asyncio.FIRST_COMPLETED)
            await self._write_pending()
            if self._closing and not self._pending_rows:
                await self._drain()
                return

    async def _drain(self) -> None:
        """Wait for every small batch in flight (before the thread path, recovery, exit)."""
        while self._inflight:
            await asyncio.wait(set(self._inflight))

    def _take(self) -> Batch:
        batch = self._pending
        self._pending = {}
        self._pending_rows = 0
        self._has_rows.clear()
        self._full.clear()
        if not self._no_room():
            self._room.set()
        return batch

    async def _write_pending(self) -> None:
        batch = self._take()
        if batch:
            if self._small(batch) and self._afree:
                self._start_small(batch)
                return
            await self._drain()  # small batches first: gap rows and klines stay after earlier data
            await asyncio.to_thread(self._write_sync, batch)
            self._handled += sum(len(rows) for rows in batch.values())
        self._progress.set()

    def _small(self, batch: Batch) -> bool:
        return self.async_small and self.db_up and self.store.fits_small(batch)

    def _start_small(self, batch: Batch) -> None:
        """Hand a small batch to the store on a free async slot, without waiting for it: the next one can
        go out on another slot meanwhile (anything order-sensitive waits for all of them, `_drain`)."""
        slot = self._afree.pop()

        async def write() -> None:
            try:
                written = await self.store.write_small(batch, slot)
                if written is None:  # nothing committed: the thread path isolates refused rows or spools
                    await asyncio.to_thread(self._write_sync, batch)
                else:
                    self._record(batch, written, [])
            finally:
                self._afree.append(slot)
                self._handled += sum(len(rows) for rows in batch.values())
                self._progress.set()

        task = asyncio.create_task(write())
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    def _write_sync(self, batch: Batch) -> None:
        """Worker thread: replay the spool if the database is back, then write (or spool) this batch."""
        with self._db_lock, self._busy():  # one thread at a time writes, spools and changes db_up
            self._write_locked(batch)

    def _write_locked(self, batch: Batch) -> None:
        if not self.db_up and time.monotonic() >= self._next_retry:
            self._try_recover()
        if not self.db_up:
            self._spool(batch)
            return
        try:
            self._commit(batch)
        except DatabaseUnavailable as exc:
            log.warning("database unavailable (%s): spooling batches to %s", one_line(exc), self.spool.directory)
            self.db_up = False
            self._failures = 0
            self._next_retry = time.monotonic() + self.retry_interval
            self._spool(batch)

    def _try_recover(self) -> None:
        """Database reachable again: prepare (first contact), replay the spool, then what was held."""
        try:
            self.store.probe()
            self.store.ping()
            if not self._prepared:
                self.prepare()  # type: ignore[misc]
                self._prepared = True
            replayed = self.spool.replay(self._commit)
            held = len(self._held)
            while self._held:
                self._commit(self._held[0])
                self._release(self._held.pop(0))
            self.db_up = True
            self.spool_full = False
            if replayed or held:
                log.info("database is back: replayed %d spooled and %d held batches", replayed, held)
        except DatabaseUnavailable:
            self._failures += 1
            delay = min(MAX_RETRY_S, self.retry_interval * 2 ** min(self._failures, 16))
            self._next_retry = time.monotonic() + max(self.retry_interval, delay)
            self._move_held_to_spool()

    def _spool(self, batch: Batch) -> None:
        """To the spool, or (spool full, or older batches held) held in memory, in order."""
        if not self._held:
            try:
                self.spool.append(batch)
                self.metrics.batches_spooled.inc()
                return
            except SpoolFull as exc:
                if not self.spool_full:
                    log.error("%s: holding batches in memory (at most %d rows, then the streams wait) "
                              "until the database or the spool takes them", exc, self.max_pending)
                self.spool_full = True
        self._held.append(batch)
        self._held_rows += sum(len(rows) for rows in batch.values())

    def _release(self, batch: Batch) -> None:
        self._held_rows -= sum(len(rows) for rows in batch.values())
        if self._loop is not None and not self._no_room():
            self._loop.call_soon_threadsafe(self._room.set)

    def _move_held_to_spool(self) -> None:
        """Database still away: the spool may have room again (disk freed)."""
        try:
            while self._held:
                self.spool.append(self._held[0])
                self.metrics.batches_spooled.inc()
                self._release(self._held.pop(0))
        except SpoolFull:
            return
        if self.spool_full:
            log.info("the spool takes batches again")
        self.spool_full = False

    def _commit(self, batch: Batch) -> None:
        written = self.store.write(batch, self.notify)
        self._record(batch, written, self.store.rejected)

    def _record(self, batch: Batch, written: dict[str, int], rejected: list[tuple[str, Row, str]]) -> None:
        """Metrics and the commit hook for a committed batch (right after its COMMIT returned)."""
        committed_ms = time.time() * 1000
        self.batches_written += 1
        for kind, count in written.items():
            self.metrics.rows_written.inc(count, TABLE_OF.get(kind, kind))
        for kind, _row, _error in rejected:
            self.metrics.rows_rejected.inc(1, TABLE_OF.get(kind, kind))
        for kind, rows in batch.items():
            index = EVENT_TIME_INDEX.get(kind)
            if index is not None:
                self.metrics.latency.observe_many(
                    (committed_ms - row[index]) / 1000 for row in rows if row[index] is not None)
        if self.on_commit is not None:
            self.on_commit(batch)

    # ------------------------------------------------------------------ control

    async def flush(self) -> None:
        """Wait until every row queued so far is committed (or spooled); later rows do not delay it."""
        if self._task is None:
            await self._write_pending()
            await self._drain()
            return
        target = self._added
        while self._handled < target:
            self._progress.clear()
            self._full.set()
            await self._progress.wait()

    async def retry_now(self) -> bool:
        """Check the database now and replay the spool if it is back; True when it is up."""
        self._next_retry = 0.0
        await self._drain()
        await asyncio.to_thread(self._recover_if_down)
        return self.db_up

    def _recover_if_down(self) -> None:
        with self._db_lock, self._busy():
            if not self.db_up and time.monotonic() >= self._next_retry:
                self._try_recover()

    async def connect(self) -> bool:
        """First contact (prepare, replay the spool); False, and batches spool, while the database is away."""
        await self.retry_now()
        return self.db_up

    async def close(self) -> None:
        """Flush everything and stop the writer task."""
        self._closing = True
        if self._task is not None:
            self._has_rows.set()
            self._full.set()
            await self._task
            self._task = None
            if self._watchdog is not None:
                self._watchdog.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._watchdog
                self._watchdog = None
        else:
            await self.flush()
        await self._drain()
        await self.store.close_async()
        await asyncio.to_thread(self._finish)

    def _finish(self) -> None:
        with self._db_lock:
            if not self.db_up:
                self._try_recover()
            if self._held:
                log.error("stopping with %d received rows that neither the database nor the spool %s took: "
                          "they are lost; the streams' windows are in the log above", self._held_rows,
                          self.spool.directory)
            with contextlib.suppress(OSError):  # a full disk: every complete line is already synced
                self.spool.close()
            self.store.close()

    @property
    def state(self) -> str:
        """ok | db_down (spooling) | spool_full (holding, streams wait) | db_stuck (a call hangs)."""
        if self.db_stuck:
            return "db_stuck"
        if self.spool_full:
            return "spool_full"
        return "ok" if self.db_up else "db_down"

    def describe(self) -> dict[str, Any]:
        return {"state": self.state, "db_up": self.db_up, "db_stuck": self.db_stuck, "spool_full": self.spool_full,
                "pending_rows": self._pending_rows, "held_rows": self._held_rows, "backpressure": self._no_room(),
                "spool_bytes": self.spool.size_bytes(), "spool_dir": str(self.spool.directory),
                "batches_written": self.batches_written}
