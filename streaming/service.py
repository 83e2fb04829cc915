"""MarketDataService: the sidecar assembled (connections -> pipeline -> writer, books, fills, events).

```python
service = MarketDataService(Settings.from_env())
await service.start()
await service.subscribe_symbol("BTCUSDT", ["kline", "trade", "depth"], "1m")
service.subscribe("market_data.kline", print)
...
await service.stop()
```
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from marketdata_assets.binance.intervals import InvalidInputError, interval_ms, validate_symbol
from marketdata_assets.redact import one_line
from marketdata_assets.settings import Settings
from marketdata_assets.storage.engine import make_engine
from streaming.books import BookManager
from streaming.connection import Backoff, DownWindow, StreamConnection, now_ms
from streaming.events import EventBus, Handler, notify_payloads
from streaming.filler import GapFiller
from streaming.health import HealthServer
from streaming.metrics import Metrics
from streaming.pipeline import Pipeline
from streaming.spool import default_spool_dir
from streaming.store import StreamStore
from streaming.streams import (
    MAX_STREAMS_PER_CONNECTION,
    SilencePolicy,
    StreamSpec,
    canonical_data_type,
    group_by_route,
    specs_for,
)
from streaming.writer import BatchWriter

log = logging.getLogger(__name__)

DEFAULT_DATA_TYPES = ("kline", "trade", "depth", "price", "ticker")
# A restarted sidecar fills (klines, trades) or records (the rest) the window since its previous run's last
# stored row when that row is at most this old; older history is the Dagster loads' job.
RESUME_MAX_AGE_S = 24 * 3600.0
# Aggregate trades are fetched by id, 1,000 per request: a longer window is left to the Dagster repair
# (its stream_gaps row is recorded as failed, which is what the gap_repair sensor picks up).
TRADE_RESUME_MAX_AGE_S = 15 * 60.0
RESTART_REASON = "sidecar restart"


class MarketDataService:
    def __init__(self, settings: Settings, *, symbols: Iterable[str] = (),
                 data_types: Sequence[str] = DEFAULT_DATA_TYPES, interval: str | None = None,
                 health_port: int | None = None, health_host: str = "127.0.0.1",
                 spool_dir: str | Path | None = None, silence: SilencePolicy | None = None,
                 lifetime_s: float = 23.5 * 3600, overlap_s: float = 2.0, book_interval_s: float = 1.0,
                 streams_per_connection: int = MAX_STREAMS_PER_CONNECTION, batch_size: int = 2000,
                 max_pending: int = 20_000, linger_s: float = 0.0005, rest: Any = None, engine: Any = None,
                 migrate: bool = True, check_symbols: bool = True, backoff_base_s: float = 0.05,
                 freeze_gc: bool = True, switch_interval_s: float | None = 0.001,
                 spool_max_bytes: int | None = None, stuck_after_s: float = 15.0,
                 resume_max_age_s: float = RESUME_MAX_AGE_S) -> None:
        self.settings = settings
        symbols = [s.strip().upper() for s in symbols]  # read twice below (spool identity, subscriptions)
        self.interval = interval or settings.default_interval
        self.metrics = Metrics()
        self.bus = EventBus()
        self.silence = silence or SilencePolicy()
        self.lifetime_s = lifetime_s
        self.overlap_s = overlap_s
        self.streams_per_connection = streams_per_connection
        self.health_port = health_port
        self.health_host = health_host
        self.check_symbols = check_symbols
        self.migrate = migrate
        self.backoff_base_s = backoff_base_s
        self.freeze_gc = freeze_gc
        self.switch_interval_s = switch_interval_s
        self.resume_max_age_s = resume_max_age_s
        self._started_ms: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._owns_rest = rest is None
        if rest is None:
            from marketdata_assets.binance.rest import BinanceRestClient

            rest = BinanceRestClient.from_settings(settings)
        self.rest = rest
        self.engine = engine
        if self.engine is None and settings.store_to_db:
            settings.ensure_sqlite_dir()
            self.engine = make_engine(settings.database_url)
        self.writer: BatchWriter | None = None
        if settings.store_to_db:
            spool = Path(spool_dir) if spool_dir else default_spool_dir(
                settings.database_url, symbols, data_types, self.interval)
            if not spool_dir and any(spool.parent.glob("spool-*.jsonl")):
                # batches an earlier version spooled into the shared folder: not replayed automatically,
                # since they may belong to another sidecar's database
                log.warning("spooled batches of an earlier version are in %s: replay them with "
                            "--spool-dir %s (only if they are this database's)", spool.parent, spool.parent)
            self.writer = BatchWriter(
                StreamStore(self.engine), spool, metrics=self.metrics, batch_size=batch_size,
                max_pending=max_pending, linger=linger_s, notify=notify_payloads if settings.publish_events else None,
                spool_max_bytes=spool_max_bytes, prepare=self._prepare_store, stuck_after=stuck_after_s)
        sink = self.writer.put if self.writer is not None else None
        self.books = BookManager(self._snapshot, sink, depth=settings.default_depth, interval=book_interval_s,
                                 metrics=self.metrics, publish=self.bus.publish_row)
        self.filler = GapFiller(self.rest, self._fill_sink, self.metrics)
        self.pipeline = Pipeline(sink, self.books, self.filler, self.bus, self.metrics,
                                 sink_nowait=self.writer.put_nowait if self.writer is not None else None)
        self.subscriptions: dict[str, list[StreamSpec]] = {}
        self.connections: list[StreamConnection] = []
        self.health: HealthServer | None = None
        self._known_symbols: set[str] | None = None
        self._started = False
        for symbol in symbols:
            self._record(symbol, data_types, self.interval)

    # ------------------------------------------------------------------ subscriptions

    def _record(self, symbol: str, data_types: Iterable[str], interval: str | None) -> list[StreamSpec]:
        symbol = validate_symbol(symbol.strip().upper())
        kinds = [canonical_data_type(k) for k in data_types]
        if not kinds:
            raise InvalidInputError(f"no data types given for {symbol}")
        specs = specs_for([symbol], kinds, interval or self.interval)
        self.subscriptions[symbol] = specs
        return specs

    async def _check_listed(self, symbols: Iterable[str]) -> None:
        if not self.check_symbols:
            return
        if self._known_symbols is None:
            info = await asyncio.to_thread(self.rest.exchange_info)
            self._known_symbols = {s["symbol"] for s in info.get("symbols", [])}
        unknown = sorted(set(symbols) - self._known_symbols)
        if unknown:
            raise InvalidInputError(
                f"unknown symbol(s) {', '.join(unknown)}: not listed in exchangeInfo at {self.settings.fapi_url}")

    async def subscribe_symbol(self, symbol: str, data_types: Sequence[str] = DEFAULT_DATA_TYPES,
                               interval: str | None = None) -> list[StreamSpec]:
        """Add a symbol's streams (live if running); returns the streams now subscribed for it."""
        symbol = validate_symbol(symbol.strip().upper())
        if self._started:
            await self._check_listed([symbol])
        old = {s.name for s in self.subscriptions.get(symbol, [])}
        specs = self._record(symbol, [*{s.data_type for s in self.subscriptions.get(symbol, [])}, *data_types],
                             interval)
        if self._started:
            await self._add_streams([s for s in specs if s.name not in old])
        return specs

    async def update_subscription(self, symbol: str, data_types: Sequence[str],
                                  interval: str | None = None) -> list[StreamSpec]:
        """Replace a symbol's streams with exactly these data types (and interval)."""
        symbol = validate_symbol(symbol.strip().upper())
        if self._started:
            await self._check_listed([symbol])
        old = {s.name: s for s in self.subscriptions.get(symbol, [])}
        specs = self._record(symbol, data_types, interval)
        if self._started:
            new_names = {s.name for s in specs}
            await self._remove_streams([n for n in old if n not in new_names])
            await self._add_streams([s for s in specs if s.name not in old])
        return specs

    async def unsubscribe_symbol(self, symbol: str) -> None:
        symbol = validate_symbol(symbol.strip().upper())
        specs = self.subscriptions.pop(symbol, [])
        if self._started:
            await self._remove_streams([s.name for s in specs])

    async def _add_streams(self, specs: list[StreamSpec]) -> None:
        for spec in specs:
            if spec.data_type == "depth":
                self.books.add(spec.symbol)
        for route, group in group_by_route(specs, self.streams_per_connection):
            room = [c for c in self.connections
                    if c.route == route and len(c.specs) + len(group) <= self.streams_per_connection]
            if room:
                await room[0].subscribe(group)
            else:
                self._open_connection(route, group)

    async def _remove_streams(self, names: list[str]) -> None:
        for connection in list(self.connections):
            mine = [n for n in names if n in connection.specs]
            if mine:
                await connection.unsubscribe(mine)
            if not connection.specs:
                await connection.stop()
                self.connections.remove(connection)
        for name in names:
            if "@depth" in name:
                self.books.remove(name.split("@", 1)[0].upper())

    def _open_connection(self, route: str, specs: list[StreamSpec]) -> StreamConnection:
        connection = StreamConnection(
            self.settings.ws_url, route, specs, self.pipeline.handle, policy=self.silence,
            lifetime=self.lifetime_s, overlap=self.overlap_s, backoff=Backoff(base=self.backoff_base_s),
            on_down=self._on_down, on_up=self._on_up,
            on_reconnect=lambda reason: self.metrics.reconnects.inc(1, reason),
            on_rotate=self.metrics.rotations.inc)
        self.connections.append(connection)
        connection.start()
        return connection

    # ------------------------------------------------------------------ outages

    def _on_down(self, connection: StreamConnection, window: DownWindow) -> None:
        for spec in list(connection.specs.values()):
            self.filler.spawn(self.filler.gap_opened(spec, window.start_ms, window.reason), f"gap-{spec.name}")

    def _on_up(self, connection: StreamConnection, window: DownWindow) -> None:
        assert window.end_ms is not None
        for spec in list(connection.specs.values()):
            self.filler.spawn(self.filler.gap_closed(spec, window.start_ms, window.end_ms, window.reason),
                              f"fill-{spec.name}")

    async def _fill_sink(self, kind: str, row: tuple) -> None:
        if self.writer is not None:
            await self.writer.put(kind, row)
        if kind != "gaps":
            self.bus.publish_row(kind, row)

    async def _snapshot(self, symbol: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.rest.depth, symbol, 1000)

    async def _exchange_now_ms(self) -> int:
        """The exchange's clock (restart windows are compared with stored exchange times)."""
        try:
            return int(await asyncio.to_thread(self.rest.server_time_ms))
        except Exception as exc:  # noqa: BLE001 - REST away: the local clock is the next best
            log.warning("could not read the exchange's time (%s): using the local clock", one_line(exc))
            return now_ms()

    def _prepare_store(self) -> None:
        """The writer's first contact with the database (worker thread): migrate, then find where the
        previous run's rows end, so the restart window is filled and recorded. A database that is away
        raises DatabaseUnavailable: the writer spools and calls again later."""
        from marketdata_assets.storage.stream_reads import stored_up_to
        from streaming.store import DatabaseUnavailable

        assert self._started_ms is not None and self._loop is not None
        before = datetime.fromtimestamp(self._started_ms / 1000, UTC)
        specs = [s for group in self.subscriptions.values() for s in group]
        try:
            if self.migrate:
                from marketdata_assets.storage.migrate import upgrade

                upgrade(self.engine)
            points = {spec.name: stored_up_to(self.engine, spec.symbol, spec.data_type, spec.interval, before)
                      for spec in specs}
        except sa.exc.OperationalError as exc:
            if self.engine.dialect.name == "sqlite":
                raise  # a local file that cannot be opened is a setting to fix, not an outage to wait out
            raise DatabaseUnavailable(one_line(str(exc.orig))) from exc
        self._loop.call_soon_threadsafe(self._resume, specs, points)

    def _resume(self, specs: list[StreamSpec], points: dict[str, Any]) -> None:
        """Continue where the previous run's rows end: klines and trades are fetched from REST for the
        window, the rest is recorded as not fillable; every window becomes a `stream_gaps` row."""
        started = self._started_ms
        assert started is not None
        for spec in specs:
            point = points.get(spec.name)
            if point is None or started - point.last_ms > self.resume_max_age_s * 1000:
                continue
            last_ms = point.last_ms
            if spec.data_type == "kline":
                step = interval_ms(spec.interval or self.interval)
                last_ms += step  # the bar was received when it closed
                if started - last_ms < step:
                    continue  # no bar closed while the sidecar was away: the live stream brings the next
            elif spec.data_type == "trade" and point.last_agg_id is not None:
                if started - last_ms > TRADE_RESUME_MAX_AGE_S * 1000:
                    self.filler.spawn(self.filler.gap_deferred(
                        spec, last_ms, started, RESTART_REASON,
                        f"longer than {TRADE_RESUME_MAX_AGE_S / 60:g} min: left to the repair sensor"),
                        f"resume-{spec.name}")
                    continue
                self.filler.ids(spec.symbol).resume_from(point.last_agg_id)
            self.filler.spawn(self.filler.gap_closed(spec, last_ms, started, RESTART_REASON),
                              f"resume-{spec.name}")

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Validate the symbols, migrate, then open the connections and the health server."""
        if self._started:
            return
        await self._check_listed(self.subscriptions)
        self._loop = asyncio.get_running_loop()
        self._started_ms = await self._exchange_now_ms()
        if self.writer is not None:
            self.writer.start()
            if not await self.writer.connect():
                log.warning("the database is not reachable: recording into the spool %s; migrating, replaying "
                            "and filling the restart window once it is back", self.writer.spool.directory)
        self.books.start()
        self._started = True
        specs = [s for group in self.subscriptions.values() for s in group]
        await self._add_streams(specs)
        if self.health_port is not None:
            self.health = HealthServer(self.describe, self.metrics, self.health_host, self.health_port)
            try:
                self.health_port = await self.health.start()
            except OSError as exc:
                self.health = None
                raise InvalidInputError(f"--health-port {self.health_port}: {self.health_host}:{self.health_port} "
                                        f"cannot be used ({exc.strerror or exc})") from None
            log.info("health on http://%s:%d/health", self.health_host, self.health_port)
        if self.switch_interval_s is not None:
            # The writer thread needs the GIL back after every database round trip; with the default
            # 5 ms switch interval it can wait that long behind the receiving loop, each time.
            sys.setswitchinterval(self.switch_interval_s)
        if self.freeze_gc:
            # Everything built so far (modules, SQLAlchemy metadata, connections) lives as long as the
            # process: moved out of the collector's generations, a full collection no longer walks
            # those ~10^5 objects on the event loop (a pause of tens of ms, straight into the latency).
            gc.collect()
            gc.freeze()

    async def stop(self, fill_grace_s: float = 5.0) -> None:
        """Close the streams, let fills finish briefly, store the books' tops, flush the writer."""
        for connection in self.connections:
            await connection.stop()
        try:
            await asyncio.wait_for(self.filler.idle(), fill_grace_s)
        except TimeoutError:
            log.warning("stopping with REST fills unfinished: their gaps stay open for the repair sensor")
        await self.filler.stop()
        await self.books.store_tops()
        await self.books.stop()
        if self.writer is not None:
            await self.writer.close()
        if self.health is not None:
            await self.health.stop()
        if self._owns_rest:
            self.rest.close()
        self._started = False

    # ------------------------------------------------------------------ reading

    def subscribe(self, topic: str, handler: Handler):
        """Events in this process: `market_data.kline|trade|depth|price|ticker`."""
        return self.bus.subscribe(topic, handler)

    async def get_historical_data(self, symbol: str, interval: str | None = None, start_time: Any = None,
                                  end_time: Any = None):
        """Stored klines as a DataFrame (MarketDataRepository.get_klines), read in a worker thread."""
        from marketdata_assets.storage.repository import MarketDataRepository

        if self.engine is None:
            raise InvalidInputError("get_historical_data needs a database (STORE_TO_DB is off)")
        repository = MarketDataRepository(self.engine)
        return await asyncio.to_thread(repository.get_klines, validate_symbol(symbol),
                                       interval or self.interval, start_time, end_time)

    async def flush(self) -> None:
        """Wait until everything received so far is committed (tests, shutdown)."""
        await self.books.store_tops()
        if self.writer is not None:
            await self.writer.flush()

    def describe(self) -> dict[str, Any]:
        connections = [c.describe() for c in self.connections]
        writer = self.writer.describe() if self.writer is not None else None
        healthy = all(c["state"] == "open" for c in connections) and (writer is None or writer["state"] == "ok")
        return {
            "status": "ok" if healthy else "degraded",
            "connections": connections,
            "books": self.books.describe(),
            "writer": writer,
            "gaps_open": self.filler.open_gaps,
            "malformed_frames": int(self.metrics.malformed.get()),
        }
