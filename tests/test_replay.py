"""Replay of stored history through the sidecar's event bus (streaming.replay), on PostgreSQL and SQLite.

Measured here: every stored kline and trade is published once, in exchange-time order (a kline at its close
time, a trade before the kline closing in the same millisecond), with exactly the payloads the live stream
publishes for the same rows; the window size does not change the sequence; async handlers run; bad input
is refused naming it; the CLI prints JSON lines and bridges to PostgreSQL NOTIFY.
"""

from __future__ import annotations

import asyncio
from datetime import date

import orjson
import psycopg
import pytest
from click.testing import CliRunner

from marketdata_assets.binance.intervals import InvalidInputError, day_start_ms
from marketdata_assets.binance.klines import raw_klines_from_rest
from marketdata_assets.cli.main import cli
from streaming.events import EventBus, event_from_row
from streaming.replay import Replayer, parse_speed, replay
from tests.support.market_rows import load_agg_trades, load_klines

DAY = date(2024, 3, 1)
NOON = day_start_ms(DAY) + 12 * 3_600_000


@pytest.fixture
def history(sim_session, repo):
    load_klines(sim_session, repo, ["BTCUSDT", "ETHUSDT"], "1m", [DAY])
    load_klines(sim_session, repo, ["BTCUSDT"], "1h", [DAY])
    trades = load_agg_trades(sim_session, repo.engine, "BTCUSDT", NOON - 300_000, NOON + 300_000)
    return repo, trades


def collect(bus: EventBus) -> list[tuple[str, dict]]:
    seen: list[tuple[str, dict]] = []
    for topic in ("market_data.kline", "market_data.trade"):
        bus.subscribe(topic, lambda event, topic=topic: seen.append((topic, event)))
    return seen


def at(item: tuple[str, dict]) -> int:
    topic, event = item
    return event["close_time"] if topic == "market_data.kline" else event["trade_time"]


def test_history_is_published_once_in_exchange_time_order_with_live_payloads(history, sim_session):
    repo, trades = history
    bus = EventBus()
    seen = collect(bus)
    stats = replay(repo.engine, bus, ["BTCUSDT", "ETHUSDT"], DAY, DAY)
    klines = [e for t, e in seen if t == "market_data.kline"]
    replayed_trades = [e for t, e in seen if t == "market_data.trade"]
    assert (stats.klines, stats.trades) == (len(klines), len(replayed_trades)) == (2 * 1440, len(trades))
    assert [at(item) for item in seen] == sorted(at(item) for item in seen)
    # a trade comes before the kline that closes in the same millisecond; symbols in the order given
    for before, after in zip(seen, seen[1:], strict=False):
        if at(before) == at(after) and before[0] != after[0]:
            assert before[0] == "market_data.trade"
        if at(before) == at(after) and before[0] == after[0] == "market_data.kline":
            assert (before[1]["symbol"], after[1]["symbol"]) == ("BTCUSDT", "ETHUSDT")

    # the live sidecar builds its events with event_from_row: the same rows give the same dicts
    market = sim_session.market
    for symbol in ("BTCUSDT", "ETHUSDT"):
        bars = market.klines(symbol, "1m", day_start_ms(DAY), day_start_ms(DAY) + 86_400_000 - 1, limit=10**6)
        rows = market.kline_rest_rows(market.spec(symbol), "1m", bars)
        mine = [e for e in klines if e["symbol"] == symbol]
        assert len(mine) == len(rows)
        for event, row in zip(mine, rows, strict=True):
            line = raw_klines_from_rest([row], symbol, "1m").csv.decode()
            assert event == event_from_row("klines", (symbol, "1m", "archive", line))
            assert list(event) == list(event_from_row("klines", (symbol, "1m", "archive", line)))
    for event, trade in zip(replayed_trades, trades, strict=True):
        live = event_from_row("agg_trades", ("BTCUSDT", trade["a"], trade["p"], trade["q"], trade["f"], trade["l"],
                                             trade["T"], trade["m"], None, "rest"))
        assert event == live and list(event) == list(live)


def test_the_window_size_does_not_change_the_sequence(history):
    repo, _ = history
    runs = []
    for window in (None, 7 * 60_000):
        bus = EventBus()
        seen = collect(bus)
        asyncio.run(Replayer(repo.engine, bus, window_ms=window).run(["BTCUSDT"], DAY, DAY, interval="1h"))
        runs.append(seen)
    assert runs[0] == runs[1]
    assert sum(t == "market_data.kline" for t, _ in runs[0]) == 24


def test_paced_replay_and_async_handlers_see_the_same_events(history):
    repo, _ = history
    start, end = NOON - 300_000, NOON + 300_000
    fast_bus, paced_bus = EventBus(), EventBus()
    fast = collect(fast_bus)
    paced: list[dict] = []

    async def handler(event: dict) -> None:
        await asyncio.sleep(0)
        paced.append(event)

    paced_bus.subscribe("market_data.trade", handler)
    replay(repo.engine, fast_bus, ["BTCUSDT"], start, end, interval=None)
    # a huge speed keeps the test quick but goes through the pacing path
    stats = replay(repo.engine, paced_bus, ["BTCUSDT"], start, end, interval=None, speed=1e9)
    assert stats.klines == 0 and stats.trades == len(fast) > 0
    assert paced == [e for _, e in fast]


@pytest.mark.parametrize(("value", "expected"), [("max", None), (None, None), ("60", 60.0), (2.5, 2.5)])
def test_parse_speed(value, expected):
    assert parse_speed(value) == expected


@pytest.mark.parametrize("value", ["fast", "0", "-1", "inf"])
def test_bad_speed_is_refused(value):
    with pytest.raises(InvalidInputError, match="invalid speed"):
        parse_speed(value)


def test_bad_input_is_refused(sqlite_engine):
    bus = EventBus()
    with pytest.raises(InvalidInputError, match="unknown interval '7m'"):
        replay(sqlite_engine, bus, ["BTCUSDT"], DAY, DAY, interval="7m")
    with pytest.raises(InvalidInputError, match="invalid symbol"):
        replay(sqlite_engine, bus, ["btc"], DAY, DAY)
    with pytest.raises(InvalidInputError, match="is not after start"):
        replay(sqlite_engine, bus, ["BTCUSDT"], NOON, NOON)


@pytest.fixture
def cli_db(sim_session, sqlite_engine, monkeypatch):
    from marketdata_assets.storage.migrate import upgrade
    from marketdata_assets.storage.repository import MarketDataRepository

    upgrade(sqlite_engine)
    load_klines(sim_session, MarketDataRepository(sqlite_engine), ["BTCUSDT"], "1h", [DAY])
    monkeypatch.setenv("DATABASE_URL", str(sqlite_engine.url))


def test_cli_prints_json_lines(cli_db):
    result = CliRunner().invoke(cli, ["replay", "--symbols", "BTCUSDT", "--start", "2024-03-01", "--end",
                                      "2024-03-01", "--interval", "1h", "--jsonl"])
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 24 and {item["topic"] for item in lines} == {"market_data.kline"}
    assert [item["event"]["open_time"] for item in lines] == sorted(item["event"]["open_time"] for item in lines)
    assert "replayed 24 events" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--speed", "0"], "invalid speed '0'"),
    (["--interval", "7m"], "unknown interval '7m'"),
    (["--notify"], "--notify needs PostgreSQL"),
    (["--no-klines", "--no-trades"], "nothing to replay"),
])
def test_cli_bad_input_exits_2(cli_db, args, message):
    result = CliRunner().invoke(cli, ["replay", "--symbols", "BTCUSDT", "--start", "2024-03-01", "--end",
                                      "2024-03-01", *args])
    assert result.exit_code == 2 and message in result.output


@pytest.mark.postgres
def test_cli_notify_reaches_a_listener(sim_session, pg_engine, monkeypatch):
    from marketdata_assets.storage.migrate import upgrade
    from marketdata_assets.storage.repository import MarketDataRepository

    upgrade(pg_engine)
    load_klines(sim_session, MarketDataRepository(pg_engine), ["BTCUSDT"], "1h", [DAY])
    url = pg_engine.url.render_as_string(hide_password=False)
    with pg_engine.connect() as conn:  # the fixture's fresh schema, for the CLI's own engine
        search_path = conn.exec_driver_sql("SHOW search_path").scalar_one()
    monkeypatch.setenv("DATABASE_URL", f"{url}?options=-csearch_path%3D{search_path}")
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as listener:
        listener.execute("LISTEN market_data")
        result = CliRunner().invoke(cli, ["replay", "--symbols", "BTCUSDT", "--start", "2024-03-01", "--end",
                                          "2024-03-01", "--interval", "1h", "--notify"])
        assert result.exit_code == 0, result.output
        events = []
        for note in listener.notifies(timeout=5, stop_after=100):
            message = orjson.loads(note.payload)
            assert message["topic"] == "market_data.kline"
            events += message["events"]
            if len(events) >= 24:
                break
    assert [e["open_time"] for e in events] == [day_start_ms(DAY) + h * 3_600_000 for h in range(24)]
