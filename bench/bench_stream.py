"""Streaming sidecar figures against the simulator (in its own process) and a scratch PostgreSQL database.

Prints, in this order:
1. p99 exchange-event -> database-commit latency at 5,000 messages/s (target <= 20 ms), measured per
   row from the event's `E` (the simulator's clock runs on the wall clock) to the commit;
2. sustained messages/s received, decoded, normalised and committed by one sidecar process (aggregate
   trades offered at `--offered`, 80,000/s by default; target >= 50,000), with the simulator's own send
   rate beside it (if that is not well above ours, the simulator is the limit);
3. reconnect time after a dropped connection: drop -> first message on the new socket (target < 1 s);
4. peak resident memory.

With `--soak-minutes N [--rate 2000]` it instead runs the sidecar for N minutes at `rate` messages/s
(aggregate trades, plus klines, depth, mark price and tickers at their natural rates) and prints the
resident memory (current RSS, not peak) after start-up, after a one-minute warm-up, every few minutes,
and at the end, with the growth over the run (target: growth < 5 MB, total < 150 MB).

Run: `.venv/bin/python bench/bench_stream.py [--seconds 10] [--symbols 8]`
     `.venv/bin/python bench/bench_stream.py --soak-minutes 30 --rate 2000`.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import scratch_database, sim_process  # noqa: E402
from marketdata_assets.settings import Settings  # noqa: E402
from marketdata_assets.storage.engine import make_engine  # noqa: E402
from streaming.service import MarketDataService  # noqa: E402


def control(url: str, action: str, **body: object) -> object:
    response = httpx.post(f"{url}/_sim/ws/{action}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()["result"]


def sim_sent(url: str) -> dict[int, int]:
    """Frames the simulator has written so far, per open WebSocket connection (is it the bottleneck?)."""
    response = httpx.get(f"{url}/_sim/ws/state", timeout=10)
    response.raise_for_status()
    state = response.json()
    return {c["id"]: c["sent"] for c in state.get("result", state)["connections"]}


def rss_mb() -> float:
    """Current resident set size of this process (not the peak): what a soak must watch."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def create_tables(engine) -> None:
    """The sidecar's tables straight from their definitions (not through the migrations: a bench must not
    depend on whatever other migrations are in progress in the tree)."""
    from marketdata_assets.storage.tables import kline_data, metadata
    from marketdata_assets.storage.tables_stream import (
        agg_trades,
        mark_price_updates,
        order_book_snapshots,
        stream_gaps,
        ticker_24h,
    )

    metadata.create_all(engine, tables=[kline_data, agg_trades, mark_price_updates, order_book_snapshots,
                                        stream_gaps, ticker_24h])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(0.01)


async def run(url: str, database_url: str, seconds: float, n_symbols: int, spool: Path,
              skip_throughput: bool = False, offered: float = 80_000) -> None:
    symbols = [s["symbol"] for s in httpx.get(f"{url}/fapi/v1/exchangeInfo").json()["symbols"]
               if s["status"] == "TRADING" and s["contractType"] == "PERPETUAL"][:n_symbols]
    settings = Settings.from_env(env={}, fapi_url=url, ws_url=url.replace("http://", "ws://"),
                                 database_url=database_url)
    engine = make_engine(database_url)
    create_tables(engine)
    service = MarketDataService(settings, symbols=symbols, data_types=["trade"], engine=engine,
                                spool_dir=spool, migrate=False)
    latencies: list[float] = []
    recording = False

    def on_commit(batch: dict) -> None:
        if recording:
            committed = time.time() * 1000
            latencies.extend(committed - row[8] for row in batch.get("agg_trades", ())
                             if row[8] is not None)

    service.writer.on_commit = on_commit
    received: list[float] = []

    def on_trade(event: dict) -> None:
        if recording:
            received.append(time.time() * 1000 - event["event_time"])

    # Synthetic trades from the first message on: the simulator starts them from its own id, and a
    # switch from market trades to synthetic ones would look like ids already seen (dropped).
    control(url, "rate", stream="*", rate=5_000 / len(symbols))
    control(url, "clock", speed=1, anchor=int(time.time() * 1000))
    await service.start()
    written = service.metrics.rows_written

    # 1. latency at 5,000 msg/s.
    unsubscribe = service.subscribe("market_data.trade", on_trade)
    control(url, "rate", stream="*", rate=5_000 / len(symbols))
    control(url, "config", tick_s=0.002)
    await asyncio.sleep(2.0)
    await service.writer.flush()
    recording = True
    await asyncio.sleep(seconds)
    recording = False
    unsubscribe()  # a subscriber makes every row an event dict: not part of the throughput figure
    # The simulator's market clock is offset from ours by however long the clock control call took;
    # the fastest delivery (about 0.25 ms on loopback, PERFORMANCE.md) pins that offset down.
    if not received or not latencies:
        raise SystemExit("no messages during the latency phase (is the machine overloaded?)")
    offset = min(received) - 0.25
    latencies = [value - offset for value in latencies]
    received = [value - offset for value in received]
    print(f"latency at 5,000 msg/s, exchange event -> commit: p50 {percentile(latencies, 0.5):.1f} ms, "
          f"p99 {percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms over {len(latencies):,} rows "
          f"(target p99 <= 20 ms); event -> received p99 {percentile(received, 0.99):.1f} ms")

    # 2. throughput: offer more than we can take; count what is committed (before any drop: the
    # simulator restarts synthetic trade ids when a stream's last subscriber goes, which we drop as seen).
    seconds_1 = 0.0 if skip_throughput else seconds
    if seconds_1:
        control(url, "config", tick_s=0.02)
        control(url, "rate", stream="*", rate=offered / len(symbols))
        await asyncio.sleep(2.0)  # warm-up
        sent_0 = await asyncio.to_thread(sim_sent, url)
        start_rows, start_msgs, start = written.get("agg_trades"), service.metrics.messages.get("trade"), \
            time.monotonic()
        await asyncio.sleep(seconds_1)
        elapsed = time.monotonic() - start
        sent_1 = await asyncio.to_thread(sim_sent, url)
        sent = sum(count - sent_0[ident] for ident, count in sent_1.items() if ident in sent_0)
        rows = written.get("agg_trades") - start_rows
        msgs = service.metrics.messages.get("trade") - start_msgs
        print(f"throughput: {msgs / elapsed:,.0f} msg/s received+decoded, {rows / elapsed:,.0f} rows/s committed "
              f"to PostgreSQL ({len(symbols)} aggTrade streams, {elapsed:.1f} s; target >= 50,000; "
              f"duplicates dropped {service.metrics.duplicates.get():,.0f}, "
              f"reconnects {sum(c.reconnects for c in service.connections)}, queued {service.writer.pending_rows:,}); "
              f"the simulator wrote {sent / elapsed:,.0f} msg/s to its sockets")
        if sum(c.reconnects for c in service.connections):
            print(f"throughput: NOT A MEASUREMENT - the simulator dropped the sidecar as a slow consumer: "
                  f"{offered:,.0f} msg/s offered is more than it sustained here; rerun with a lower --offered")

    # 3. reconnect after a drop (at 5,000 msg/s, once the throughput phase's backlog is written: a
    # reconnect measured behind a full queue would time the backpressure, not the reconnect).
    control(url, "rate", stream="*", rate=5_000 / len(symbols))
    control(url, "config", tick_s=0.002)
    await service.writer.flush()
    await asyncio.sleep(1.0)
    connection = service.connections[0]
    times: list[float] = []
    up_at: list[float] = []
    on_up = connection.on_up

    def record_up(conn, window) -> None:  # the first message after the drop, on our wall clock
        up_at.append(time.time() * 1000)
        if on_up is not None:
            on_up(conn, window)

    connection.on_up = record_up
    for _ in range(5):
        # Each drop hits a connection that had been stable (backoff escalation is for flapping servers).
        connection.backoff.reset()
        windows = len(connection.down_windows)
        dropped_at = time.time() * 1000
        await asyncio.to_thread(control, url, "drop")  # the sidecar's loop keeps running meanwhile
        await wait_for(lambda n=windows: len(connection.down_windows) > n and connection.down is None)
        times.append(up_at[-1] - dropped_at)
        await asyncio.sleep(0.5)
    print(f"reconnect after a drop (drop -> first message on the new socket): "
          f"median {statistics.median(times):.0f} ms, "
          f"max {max(times):.0f} ms over {len(times)} drops (target < 1000 ms)")
    control(url, "rate", stream="*", rate=0)
    await service.stop()
    engine.dispose()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {rss_mb:.0f} MB")


async def soak(url: str, database_url: str, minutes: float, rate: float, n_symbols: int, spool: Path,
               report_every_s: float = 300.0) -> None:
    symbols = [s["symbol"] for s in httpx.get(f"{url}/fapi/v1/exchangeInfo").json()["symbols"]
               if s["status"] == "TRADING" and s["contractType"] == "PERPETUAL"][:n_symbols]
    settings = Settings.from_env(env={}, fapi_url=url, ws_url=url.replace("http://", "ws://"),
                                 database_url=database_url)
    engine = make_engine(database_url)
    create_tables(engine)
    service = MarketDataService(settings, symbols=symbols,
                                data_types=["trade", "kline", "depth", "price", "ticker"],
                                engine=engine, spool_dir=spool, migrate=False)
    for symbol in symbols:  # synthetic trades only; the other streams follow the simulated market
        control(url, "rate", stream=f"{symbol.lower()}@aggTrade", rate=rate / len(symbols))
    control(url, "clock", speed=1, anchor=int(time.time() * 1000))
    await service.start()
    started = rss_mb()
    print(f"soak: {len(symbols)} symbols x (aggTrade at {rate / len(symbols):,.0f}/s, kline, depth, markPrice, "
          f"ticker), {minutes:g} min; RSS after start-up {started:.1f} MB", flush=True)
    await asyncio.sleep(60)
    messages = service.metrics.messages
    rows_written = service.metrics.rows_written
    base_rss, base_msgs, base_rows, t0 = (rss_mb(), sum(messages.values.values()),
                                          sum(rows_written.values.values()), time.monotonic())
    print(f"soak: RSS after 1 min warm-up {base_rss:.1f} MB (the start of the measured run)", flush=True)
    deadline = t0 + minutes * 60
    highest = base_rss
    next_report = t0 + report_every_s
    while (now := time.monotonic()) < deadline:
        await asyncio.sleep(min(5.0, deadline - now))
        highest = max(highest, rss_mb())
        if time.monotonic() >= next_report:
            next_report += report_every_s
            done = sum(messages.values.values()) - base_msgs
            print(f"soak: {(time.monotonic() - t0) / 60:5.1f} min  RSS {rss_mb():.1f} MB  "
                  f"{done / (time.monotonic() - t0):,.0f} msg/s  queued {service.writer.pending_rows}", flush=True)
    elapsed = time.monotonic() - t0
    end_rss = rss_mb()
    done = sum(messages.values.values()) - base_msgs
    written = sum(rows_written.values.values()) - base_rows
    reconnects = sum(c.reconnects for c in service.connections)
    control(url, "rate", stream="*", rate=0)
    await service.stop()
    engine.dispose()
    print(f"soak result: {elapsed / 60:.1f} min at {done / elapsed:,.0f} msg/s ({done:,.0f} messages, "
          f"{written:,.0f} rows written, {reconnects} reconnects): start RSS {base_rss:.1f} MB, "
          f"end RSS {end_rss:.1f} MB, growth {end_rss - base_rss:+.1f} MB, highest {highest:.1f} MB "
          f"(targets: growth < 5 MB, total < 150 MB)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--symbols", type=int, default=8)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--offered", type=float, default=80_000, help="synthetic messages/s offered")
    parser.add_argument("--soak-minutes", type=float, default=0.0,
                        help="run the memory soak for this many minutes instead of the other figures")
    parser.add_argument("--rate", type=float, default=2_000, help="aggregate trades/s during the soak")
    args = parser.parse_args()
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    name = "bench_stream_soak" if args.soak_minutes else "bench_stream"
    with sim_process(now) as url, scratch_database(name) as database_url:
        spool = Path("/tmp") / f"{name.replace('_', '-')}-spool"
        if args.soak_minutes:
            asyncio.run(soak(url, database_url, args.soak_minutes, args.rate, args.symbols, spool))
        else:
            asyncio.run(run(url, database_url, args.seconds, args.symbols, spool, args.skip_throughput,
                            args.offered))


if __name__ == "__main__":
    main()
