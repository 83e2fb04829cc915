"""The batch writer and store against real PostgreSQL: exact values, idempotence, bad-row isolation,
backpressure, and the disk spool while the database is away."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import sqlalchemy as sa

from marketdata_assets.storage.engine import make_engine
from marketdata_assets.storage.tables_stream import (
    agg_trades,
    mark_price_updates,
    order_book_snapshots,
    stream_gaps,
    ticker_24h,
)
from streaming.metrics import Metrics
from streaming.spool import Spool
from streaming.store import StreamStore
from streaming.writer import BatchWriter
from tests.support.streaming import (
    async_test,
    bring_database_back,
    pg_database,
    pg_schema,
    requires_pg,
    take_database_away,
)

pytestmark = [requires_pg, pytest.mark.postgres]

T0 = 1_626_992_741_000


def trade(agg_id: int, price: str = "7.6110", symbol: str = "SUSHIUSDT") -> tuple:
    return (symbol, agg_id, price, "12", agg_id * 2, agg_id * 2 + 1, T0 + agg_id, agg_id % 2 == 0,
            T0 + agg_id + 5, "stream")


@pytest.fixture()
def engine():
    with pg_schema() as engine:
        yield engine


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_every_kind_is_stored_exactly_and_idempotently(engine, tmp_path):
    store = StreamStore(engine)
    batch = {
        "agg_trades": [trade(1, "58665.00"), trade(2, "0.00001000")],
        "mark_price": [("EOSUSDT", 1616555105001, "4.11998561", "4.11519211", "4.11278428", "0.00030438",
                        1616572800000), ("BTCUSDT_220624", 1616555105001, "29000.1", None, None, None, None)],
        "ticker": [("ETHUSDT", 1653815205866, "24.69", "1.405", "1782.01", "1782.02", "0.003", "1757.33",
                    "1809.33", "1750.45", "1678290.411", "2990736920.72", 1653728760000, 1653815205856,
                    1689354205, 1691266554, 1912297)],
        "book": [("SUSHIUSDT", 600859605926, T0, 2, '[["7.6110","6"],["7.6080","161"]]',
                  '[["7.6120","297"],["7.6130","12"]]')],
        "gaps": [("SUSHIUSDT", "sushiusdt@aggTrade", "trade", "", T0, None, "disconnect", "open", 0, 0, None)],
    }
    assert store.write(batch) == {"agg_trades": 2, "mark_price": 2, "ticker": 1, "book": 1, "gaps": 1}
    store.write(batch)  # again: nothing changes, nothing fails
    with engine.connect() as conn:
        prices = conn.execute(sa.select(agg_trades.c.price).order_by(agg_trades.c.agg_id)).scalars().all()
        assert [str(p) for p in prices] == ["58665.00", "0.00001000"]
        row = conn.execute(sa.select(agg_trades).where(agg_trades.c.agg_id == 1)).one()
        assert int(row.trade_time.timestamp() * 1000) == T0 + 1 and row.is_buyer_maker is False
        mark = conn.execute(sa.select(mark_price_updates).where(mark_price_updates.c.symbol == "EOSUSDT")).one()
        assert mark.funding_rate == Decimal("0.00030438") and mark.next_funding_time.hour == 8
        book = conn.execute(sa.select(order_book_snapshots)).one()
        assert book.bids == [["7.6110", "6"], ["7.6080", "161"]]
        assert str(conn.execute(sa.select(ticker_24h.c.quote_volume)).scalar_one()) == "2990736920.72"
    assert (count(engine, agg_trades), count(engine, mark_price_updates), count(engine, stream_gaps)) == (2, 2, 1)


def test_a_large_trade_batch_is_copied_exactly_and_an_overlapping_one_adds_only_the_new_ids(engine):
    store = StreamStore(engine)
    first = [trade(i) for i in range(1, 1001)]
    first[3] = first[3][:8] + (None, "rest")  # filled from REST: no event time
    assert store.write({"agg_trades": first}) == {"agg_trades": 1000}
    overlapping = [trade(i, "9.9") for i in range(501, 1601)]  # ids 501..1000 already stored
    assert store.write({"agg_trades": overlapping}) == {"agg_trades": 1100}
    with engine.connect() as conn:
        stored = conn.execute(sa.select(agg_trades).order_by(agg_trades.c.agg_id)).all()
    assert [r.agg_id for r in stored] == list(range(1, 1601))
    assert {str(r.price) for r in stored[:1000]} == {"7.6110"} and {str(r.price) for r in stored[1000:]} == {"9.9"}
    ms = [(int(r.trade_time.timestamp() * 1000), r.event_time and int(r.event_time.timestamp() * 1000))
          for r in stored]
    assert ms[0] == (T0 + 1, T0 + 6) and ms[3] == (T0 + 4, None) and ms[1599] == (T0 + 1600, T0 + 1605)
    assert stored[3].source == "rest" and [r.is_buyer_maker for r in stored[:2]] == [False, True]
    assert all(r.ingested_at.tzinfo is not None for r in stored)


def test_gap_rows_are_updated_in_place(engine):
    store = StreamStore(engine)
    gap = ("SUSHIUSDT", "sushiusdt@kline_1m", "kline", "1m", T0, None, "disconnect", "open", 0, 0, None)
    store.write({"gaps": [gap]})
    closed = gap[:5] + (T0 + 5000, "disconnect", "filled", 3, 1, None)
    store.write({"gaps": [closed]})
    store.write({"gaps": [gap[:5] + (None, "disconnect", "filled", 3, 1, None)]})  # end kept when absent
    with engine.connect() as conn:
        row = conn.execute(sa.select(stream_gaps)).one()
    assert (row.state, row.rows_filled, int(row.end_time.timestamp() * 1000)) == ("filled", 3, T0 + 5000)


@pytest.mark.parametrize("n", [40, 1000])  # one INSERT ... unnest round trip / COPY through staging
def test_rejected_rows_are_isolated_and_the_rest_stored(engine, tmp_path, n):
    store = StreamStore(engine)
    rows = [trade(i) for i in range(1, 1001)][:n]
    if n < 1000:
        rows[-1] = ("SUSHIUSDT", n, "1", "1", 1, 1, T0, True, T0, "bogus")
        written = store.write({"agg_trades": rows, "mark_price": [("EOSUSDT", T0, "4.1", None, None, None, None)]})
        assert written == {"agg_trades": n - 1, "mark_price": 1}
        assert [r[1][1] for r in store.rejected] == [n]
        assert count(engine, agg_trades) == n - 1 and count(engine, mark_price_updates) == 1
        return
    rows[17] = trade(18, "not-a-number")
    rows[500] = trade(501, "1e200000")                    # NUMERIC overflow
    rows[999] = ("SUSHIUSDT", 1000, "1", "1", 1, 1, T0, True, T0, "bogus")  # violates the source check
    written = store.write({"agg_trades": rows})
    assert written == {"agg_trades": 997}
    assert sorted(r[1][1] for r in store.rejected) == [18, 501, 1000]
    assert count(engine, agg_trades) == 997


@async_test
async def test_writer_batches_and_measures_latency(engine, tmp_path):
    metrics = Metrics()
    writer = BatchWriter(StreamStore(engine), tmp_path / "spool", metrics=metrics, batch_size=100)
    writer.start()
    for i in range(1, 1001):
        await writer.put("agg_trades", trade(i))
    await writer.flush()
    assert count(engine, agg_trades) == 1000
    assert metrics.rows_written.get("agg_trades") == 1000
    assert metrics.latency.count == 1000
    assert 1 <= writer.batches_written <= 10  # batched, not one transaction per row
    await writer.close()


@async_test
async def test_batches_on_two_connections_keep_gap_rows_in_order(engine, tmp_path):
    # Many small batches through the store's two async connections, large ones through the thread:
    # every row once, and each gap's last state wins (a later batch committing before an earlier one
    # would leave a gap "open" after it was filled).
    writer = BatchWriter(StreamStore(engine), tmp_path / "spool", batch_size=7, linger=0)
    writer.start()

    async def taken() -> None:  # the writer has taken what is queued: the next row starts a new batch
        while writer.pending_rows:
            await asyncio.sleep(0)

    for i in range(1, 401):
        await writer.put("agg_trades", trade(i))
        if i % 10 == 0:
            await taken()
        if i % 40 == 0:
            gap = ("SUSHIUSDT", "sushiusdt@aggTrade", "trade", "", T0 + i, None, "disconnect", "open", 0, 0, None)
            await writer.put("gaps", gap)
            await writer.put("agg_trades", trade(20_000 + i))  # a large batch behind the gap row
            for j in range(300):
                await writer.put("agg_trades", trade(10_000 + i * 5 + j % 5 + (j // 5) * 100_000))
            await taken()
            await writer.put("agg_trades", trade(30_000 + i))  # the fill, then the gap's new state
            await writer.put("gaps", gap[:5] + (T0 + i + 9, "disconnect", "filled", 1, 1, None))
    await writer.flush()
    assert writer.batches_written > 10
    await writer.close()
    assert count(engine, agg_trades) == 400 + 10 * 302
    with engine.connect() as conn:
        states = conn.execute(sa.select(stream_gaps.c.state, sa.func.count()).group_by(stream_gaps.c.state)).all()
    assert states == [("filled", 10)]


@async_test
async def test_a_refused_row_in_a_small_batch_is_isolated_by_the_writer(engine, tmp_path):
    # Small batches go out from the event loop in one round trip; a refused row sends the batch the
    # thread way, which stores the others and counts the bad one.
    metrics = Metrics()
    writer = BatchWriter(StreamStore(engine), tmp_path / "spool", metrics=metrics, batch_size=1000)
    writer.start()
    for i in range(1, 21):
        await writer.put("agg_trades", trade(i, "not-a-number" if i == 7 else "7.6110"))
    await writer.flush()
    await writer.close()
    assert count(engine, agg_trades) == 19
    assert metrics.rows_rejected.get("agg_trades") == 1 and metrics.rows_written.get("agg_trades") == 19


@async_test
async def test_put_blocks_when_the_buffer_is_full(engine, tmp_path):
    writer = BatchWriter(StreamStore(engine), tmp_path / "spool", max_pending=10, batch_size=1000)
    for i in range(10):
        await writer.put("agg_trades", trade(i + 1))
    blocked = asyncio.create_task(writer.put("agg_trades", trade(11)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not blocked.done() and writer.pending_rows == 10
    writer.start()
    await blocked
    await writer.close()
    assert count(engine, agg_trades) == 11


@async_test
async def test_database_away_spools_then_replays(tmp_path):
    with pg_database() as (url, name):
        engine = make_engine(url)
        metrics = Metrics()
        writer = BatchWriter(StreamStore(engine), tmp_path / "spool", metrics=metrics, batch_size=50,
                             retry_interval=0.05)
        writer.start()
        for i in range(1, 101):
            await writer.put("agg_trades", trade(i))
        await writer.flush()
        take_database_away(name)
        for i in range(101, 301):
            await writer.put("agg_trades", trade(i))
        await writer.put("gaps", ("SUSHIUSDT", "sushiusdt@aggTrade", "trade", "", T0, T0 + 9, "disconnect",
                                  "open", 0, 0, None))
        await writer.flush()
        assert not writer.db_up and metrics.batches_spooled.get() >= 1
        assert writer.spool.size_bytes() > 0
        bring_database_back(name)
        assert await writer.retry_now()
        await writer.close()
        engine.dispose()
        engine = make_engine(url)
        assert count(engine, agg_trades) == 300
        assert count(engine, stream_gaps) == 1
        assert writer.spool.size_bytes() == 0
        engine.dispose()


@async_test
async def test_spool_left_by_a_crash_is_replayed_at_start(engine, tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.append({"agg_trades": [trade(1), trade(2)]})
    spool.close()
    with open(spool.segments()[-1], "ab") as handle:
        handle.write(b'{"agg_trades": [["SUSHIUSDT", 3')  # torn line from the crash
    writer = BatchWriter(StreamStore(engine), tmp_path / "spool", retry_interval=0.01)
    writer.start()
    await writer.put("agg_trades", trade(4))
    await writer.close()
    with engine.connect() as conn:
        ids = conn.execute(sa.select(agg_trades.c.agg_id).order_by(agg_trades.c.agg_id)).scalars().all()
    assert ids == [1, 2, 4]


def test_store_works_on_sqlite_too(tmp_path):
    from marketdata_assets.storage.migrate import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'md.db'}")
    upgrade(engine)
    store = StreamStore(engine)
    batch = {
        "agg_trades": [trade(1, "58665.00"), trade(2)],
        "book": [("SUSHIUSDT", 600859605926, T0, 1, '[["7.6110","6"]]', '[["7.6120","297"]]')],
        "gaps": [("SUSHIUSDT", "sushiusdt@aggTrade", "trade", "", T0, T0 + 1, "disconnect", "filled", 2, 1, None)],
        "klines": [("SUSHIUSDT", "1m", "stream",
                    "1626992700000,7.6080,7.6180,7.6070,7.6170,3005,1626992759999,22875.8590,113,1900,14464.6960,0\n")],
    }
    assert store.write(batch) == {"agg_trades": 2, "book": 1, "gaps": 1, "klines": 1}
    store.write(batch)
    with engine.connect() as conn:
        assert conn.execute(sa.select(agg_trades.c.price).where(agg_trades.c.agg_id == 1)).scalar_one() == \
            Decimal("58665.00")
        assert conn.execute(sa.select(sa.func.count()).select_from(order_book_snapshots)).scalar_one() == 1
    from marketdata_assets.storage.repository import MarketDataRepository

    frame = MarketDataRepository(engine).get_klines("SUSHIUSDT", "1m", T0 - 3_600_000, T0 + 3_600_000)
    assert len(frame) == 1 and frame["close"].iloc[0] == 7.617
    engine.dispose()


def test_copy_text_falls_back_when_a_value_needs_escaping(engine):
    from streaming.copy_text import copy_text

    assert copy_text([trade(1)], 10) is not None
    odd = ("SUSHI\tUSDT", 7, "1", "1", 1, 1, T0, True, None, "stream")
    assert copy_text([odd], 10) is None
    assert StreamStore(engine).write({"agg_trades": [odd, trade(8)]}) == {"agg_trades": 2}
    with engine.connect() as conn:
        symbols = set(conn.execute(sa.select(agg_trades.c.symbol)).scalars())
    assert symbols == {"SUSHI\tUSDT", "SUSHIUSDT"}
