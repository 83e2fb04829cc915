"""The sidecar against the simulator (real sockets, real PostgreSQL): what is stored equals the simulator's
truth (its REST answers) after drops, stalls, rotations, depth breaks and a database outage, and every
outage is in `stream_gaps`.

The simulator's market clock runs at 60x (one 1m bar per wall second). Nothing sleeps to synchronise:
every wait polls a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import httpx
import pytest
import sqlalchemy as sa

from marketdata_assets.binance.rest import BinanceRestClient
from marketdata_assets.settings import Settings
from marketdata_assets.storage.engine import make_engine
from marketdata_assets.storage.tables import kline_data
from marketdata_assets.storage.tables_stream import agg_trades, order_book_snapshots, stream_gaps
from streaming.service import MarketDataService
from streaming.streams import SilencePolicy
from tests.support.streaming import (
    async_test,
    bring_database_back,
    pg_database,
    pg_schema,
    requires_pg,
    take_database_away,
)

pytestmark = [requires_pg, pytest.mark.postgres, pytest.mark.slow]

SPEED = 60
SYMBOLS = ("BTCUSDT", "ETHUSDT")


@pytest.fixture()
def engine():
    with pg_schema() as engine:
        yield engine


def ws_control(srv, action: str, **body) -> object:
    response = httpx.post(f"{srv.url}/_sim/ws/{action}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["result"]


async def until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def make_service(srv, engine, tmp_path, **options) -> MarketDataService:
    settings = Settings.from_env(env={}, fapi_url=srv.url, ws_url=srv.ws_url,
                                 database_url="postgresql://unused/unused",
                                 publish_events=options.pop("publish_events", None))
    options.setdefault("silence", SilencePolicy().scaled(0.5))
    options.setdefault("book_interval_s", 0.2)
    return MarketDataService(settings, symbols=options.pop("symbols", SYMBOLS), engine=engine,
                             spool_dir=tmp_path / "spool", **options)


def closed_bars(service: MarketDataService) -> int:
    return int(service.metrics.rows_written.get("kline_data"))


# ----- truth ----------------------------------------------------------------------------------------
def stored_klines(engine, symbol: str) -> list[tuple]:
    c = kline_data.c
    query = sa.select(c.open_time, c.open, c.high, c.low, c.close, c.volume, c.close_time, c.quote_volume,
                      c.trades_count, c.taker_buy_volume, c.taker_buy_quote_volume).where(
        c.symbol == symbol, c.interval == "1m").order_by(c.open_time)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [(int(r[0].timestamp() * 1000), *(str(v) for v in r[1:6]), int(r[6].timestamp() * 1000), str(r[7]),
             int(r[8]), str(r[9]), str(r[10])) for r in rows]


def assert_klines_equal_truth(engine, srv, symbol: str) -> int:
    rows = stored_klines(engine, symbol)
    assert rows, f"no klines stored for {symbol}"
    first, last = rows[0][0], rows[-1][0]
    assert [r[0] for r in rows] == list(range(first, last + 1, 60_000)), f"{symbol}: a bar is missing"
    with BinanceRestClient(srv.url) as rest:
        truth = rest.klines(symbol, "1m", first, last + 60_000).text_rows()
    expected = [(int(t[0]), *t[1:6], int(t[6]), t[7], int(t[8]), t[9], t[10]) for t in truth]
    assert rows == expected
    return len(rows)


def assert_trades_equal_truth(engine, srv, symbol: str) -> int:
    c = agg_trades.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(c.agg_id, c.price, c.quantity, c.first_trade_id, c.last_trade_id,
                                      c.trade_time, c.is_buyer_maker).where(c.symbol == symbol)
                            .order_by(c.agg_id)).all()
    assert rows, f"no trades stored for {symbol}"
    ids = [r[0] for r in rows]
    assert ids == list(range(ids[0], ids[-1] + 1)), f"{symbol}: aggregate trade ids are missing"
    truth: list[dict] = []
    with BinanceRestClient(srv.url) as rest:
        cursor = ids[0]
        while cursor <= ids[-1]:
            page = rest.agg_trades(symbol, from_id=cursor, limit=1000)
            assert page, f"REST has no trades from {cursor}"
            truth += [t for t in page if t["a"] <= ids[-1]]
            cursor = page[-1]["a"] + 1
    stored = [(r[0], str(r[1]), str(r[2]), r[3], r[4], int(r[5].timestamp() * 1000), r[6]) for r in rows]
    assert stored == [(t["a"], t["p"], t["q"], t["f"], t["l"], t["T"], t["m"]) for t in truth]
    return len(rows)


def gap_rows(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.select(stream_gaps).order_by(stream_gaps.c.id)).all()


@contextlib.asynccontextmanager
async def running(service: MarketDataService, srv):
    await service.start()
    ws_control(srv, "clock", speed=SPEED)
    try:
        yield service
    finally:
        ws_control(srv, "clock", speed=None)
        await service.stop()


# ----- scenarios ------------------------------------------------------------------------------------
@async_test
async def test_steady_stream_stores_the_truth(sim, engine, tmp_path):
    service = make_service(sim, engine, tmp_path)
    kline_events: list[dict] = []
    service.subscribe("market_data.kline", kline_events.append)
    async with running(service, sim):
        await until(lambda: closed_bars(service) >= 2 * len(SYMBOLS), "two closed bars per symbol")
    for symbol in SYMBOLS:
        assert assert_klines_equal_truth(engine, sim, symbol) >= 2
        assert assert_trades_equal_truth(engine, sim, symbol) > 10
    assert gap_rows(engine) == []
    assert {e["symbol"] for e in kline_events} == set(SYMBOLS)
    assert all(e["source"] == "stream" for e in kline_events)
    assert service.metrics.malformed.get() == 0


@async_test
async def test_dropped_connection_is_recorded_and_filled(sim, engine, tmp_path):
    service = make_service(sim, engine, tmp_path)
    async with running(service, sim):
        await until(lambda: closed_bars(service) >= len(SYMBOLS), "a closed bar per symbol")
        market = next(c for c in service.connections if c.route == "/market")
        before = market.messages
        assert ws_control(sim, "drop") >= 1  # the market goes on while nobody listens
        await until(lambda: market.reconnects >= 1 and market.state == "open", "the reconnect")
        await until(lambda: market.messages > before + 50, "data after the reconnect")
        await until(lambda: closed_bars(service) >= 3 * len(SYMBOLS), "bars after the reconnect")
        await service.filler.idle()
        await service.flush()
    gaps = gap_rows(engine)
    streams = {g.stream for g in gaps}
    assert {"btcusdt@kline_1m", "btcusdt@aggTrade", "ethusdt@kline_1m", "ethusdt@depth@100ms"} <= streams
    for gap in gaps:
        assert gap.end_time is not None and gap.end_time >= gap.start_time
        expected = {"kline": "filled", "trade": "filled"}.get(gap.data_type, "not_fillable")
        assert gap.state == expected, gap
    for symbol in SYMBOLS:
        assert_klines_equal_truth(engine, sim, symbol)
        assert_trades_equal_truth(engine, sim, symbol)
    assert service.metrics.reconnects.get("closed") >= 1
    # whether a trade fell inside a ~30 ms outage is chance; that every stored trade equals the exchange's
    # (asserted above) is not


@async_test
async def test_stalled_connection_is_detected_by_silence(sim, engine, tmp_path):
    service = make_service(sim, engine, tmp_path, silence=SilencePolicy().scaled(0.1))
    async with running(service, sim):
        await until(lambda: closed_bars(service) >= len(SYMBOLS), "a closed bar per symbol")
        market = next(c for c in service.connections if c.route == "/market")
        assert ws_control(sim, "stall", stream="btcusdt@markPrice@1s") >= 1  # open, silent
        await until(lambda: market.reconnects >= 1 and market.state == "open", "a reconnect after silence")
        await until(lambda: closed_bars(service) >= 3 * len(SYMBOLS), "bars after the reconnect")
        await service.filler.idle()
        await service.flush()
    assert any(reason.startswith("silence") for (reason,) in service.metrics.reconnects.values)
    gaps = [g for g in gap_rows(engine) if g.stream == "btcusdt@aggTrade"]
    assert gaps and gaps[0].reason.startswith("silence") and gaps[0].state == "filled"
    kline_gaps = [g for g in gap_rows(engine) if g.data_type == "kline"]
    # windows are on the exchange clock, so REST returns the bars around them
    assert kline_gaps and all(g.state == "filled" and g.rows_filled > 0 for g in kline_gaps)
    for symbol in SYMBOLS:
        assert_klines_equal_truth(engine, sim, symbol)
        assert_trades_equal_truth(engine, sim, symbol)


@async_test
async def test_rotation_opens_the_new_connection_first_and_loses_nothing(sim, engine, tmp_path):
    service = make_service(sim, engine, tmp_path, lifetime_s=1.5, overlap_s=0.3)
    async with running(service, sim):
        await until(lambda: all(c.rotations >= 2 for c in service.connections), "two rotations each")
        await until(lambda: closed_bars(service) >= 3 * len(SYMBOLS), "bars across the rotations")
        await service.flush()
    assert service.metrics.rotations.get() >= 4
    assert all(c.reconnects == 0 for c in service.connections)
    assert gap_rows(engine) == []                       # rotation is not an outage
    assert service.metrics.trade_ids_filled.get() == 0  # and needed no REST fill
    assert service.metrics.duplicates.get() > 0         # the overlap delivered twice; stored once
    for symbol in SYMBOLS:
        assert_klines_equal_truth(engine, sim, symbol)
        assert_trades_equal_truth(engine, sim, symbol)


@async_test
async def test_depth_break_resyncs_that_symbol_only_and_the_book_equals_the_truth(sim, engine, tmp_path):
    service = make_service(sim, engine, tmp_path, symbols=SYMBOLS)
    async with running(service, sim):
        await until(lambda: all(b.live for b in service.books.books.values()), "both books live")
        assert ws_control(sim, "break_depth", symbol="BTCUSDT", mode="skip") >= 1
        await until(lambda: service.metrics.resyncs.get("BTCUSDT") >= 1, "the BTCUSDT resync")
        await until(lambda: service.books.books["BTCUSDT"].live, "BTCUSDT live again")
        ws_control(sim, "clock", speed=None)  # freeze: compare with the snapshot REST gives now
        with BinanceRestClient(sim.url) as rest:
            truth = {s: rest.depth(s, 1000) for s in SYMBOLS}
        await until(lambda: all(service.books.books[s].last_update_id == truth[s]["lastUpdateId"]
                                for s in SYMBOLS), "the books to reach the REST snapshot's update id")
        await service.flush()
    assert service.metrics.resyncs.get("ETHUSDT") == 0
    depth = service.settings.default_depth
    for symbol in SYMBOLS:
        bids, asks = service.books.books[symbol].book.top(depth)
        assert [list(level) for level in bids] == truth[symbol]["bids"][:depth]
        assert [list(level) for level in asks] == truth[symbol]["asks"][:depth]
        with engine.connect() as conn:
            stored = conn.execute(sa.select(order_book_snapshots).where(
                order_book_snapshots.c.symbol == symbol).order_by(order_book_snapshots.c.last_update_id.desc())
            ).first()
        assert stored.last_update_id == truth[symbol]["lastUpdateId"]
        assert stored.bids == truth[symbol]["bids"][:depth] and stored.asks == truth[symbol]["asks"][:depth]


@async_test
async def test_malformed_frame_is_counted_and_skipped(sim, engine, tmp_path):
    service = make_service(sim, engine, tmp_path, symbols=("BTCUSDT",))
    async with running(service, sim):
        await until(lambda: service.metrics.messages.get("trade") > 5, "trades")
        assert ws_control(sim, "malformed", stream="btcusdt@aggTrade") == 1
        await until(lambda: service.metrics.malformed.get() == 1, "the malformed frame to be counted")
        seen = service.metrics.messages.get("trade")
        await until(lambda: service.metrics.messages.get("trade") > seen + 5, "trades after it")
    assert all(c.reconnects == 0 for c in service.connections)


@async_test
async def test_unknown_symbol_is_refused_at_start(sim, engine, tmp_path):
    from marketdata_assets.binance.intervals import InvalidInputError

    service = make_service(sim, engine, tmp_path, symbols=("BTCUSDT", "NOSUCHUSDT"))
    with pytest.raises(InvalidInputError, match="NOSUCHUSDT"):
        await service.start()
    assert service.connections == []
    await service.stop()


@async_test
async def test_database_outage_spools_and_replays_without_loss(sim, tmp_path):
    with pg_database() as (url, name):
        engine = make_engine(url)
        service = make_service(sim, engine, tmp_path)
        service.writer.retry_interval = 0.1
        async with running(service, sim):
            await until(lambda: closed_bars(service) >= len(SYMBOLS), "a closed bar per symbol")
            await asyncio.to_thread(take_database_away, name)
            await until(lambda: not service.writer.db_up, "the writer to notice the outage")
            spooled = service.metrics.batches_spooled.get()
            await until(lambda: service.metrics.batches_spooled.get() > spooled + 20, "batches spooled")
            await until(lambda: closed_bars(service) >= 0 and service.writer.spool.size_bytes() > 0, "a spool")
            assert service.describe()["status"] == "degraded"
            await asyncio.to_thread(bring_database_back, name)
            await until(lambda: service.writer.db_up, "the writer to replay the spool", timeout=30)
            written = closed_bars(service)
            await until(lambda: closed_bars(service) >= written + len(SYMBOLS), "bars after the outage")
            await service.flush()
        assert service.writer.spool.size_bytes() == 0
        engine.dispose()
        engine = make_engine(url)
        for symbol in SYMBOLS:
            assert_klines_equal_truth(engine, sim, symbol)
            assert_trades_equal_truth(engine, sim, symbol)
        engine.dispose()


@async_test
async def test_health_and_metrics_endpoints(sim, engine, tmp_path):
    service = make_service(sim, engine, tmp_path, symbols=("BTCUSDT",), health_port=0)
    async with running(service, sim):
        await until(lambda: service.books.books["BTCUSDT"].live and service.metrics.rows_written.values,
                    "a live book and written rows")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.health_port}") as client:
            health = (await client.get("/health")).json()
            metrics = (await client.get("/metrics")).text
    assert health["status"] == "ok"
    routes = {c["route"]: c for c in health["connections"]}
    assert set(routes) == {"/market", "/public"}
    assert routes["/public"]["stream_names"] == ["btcusdt@depth@100ms"]
    assert routes["/market"]["last_message_age_s"] is not None and routes["/market"]["reconnects"] == 0
    assert health["books"]["BTCUSDT"]["state"] == "live"
    for series in ("marketdata_stream_messages_total{data_type=\"trade\"}",
                   "marketdata_stream_event_to_commit_seconds_bucket", "marketdata_stream_queue_depth",
                   "marketdata_stream_spool_bytes", "marketdata_stream_rows_written_total{table=\"agg_trades\"}",
                   "marketdata_stream_gaps_open", "marketdata_stream_reconnects_total"):
        assert series in metrics, series
