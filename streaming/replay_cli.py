"""`marketdata replay`: stored klines and aggregate trades back through the event bus, in exchange-time order.

In this process the events go to the sidecar's EventBus (streaming.replay). To reach other processes:
`--jsonl` prints each event as a JSON line ({"topic": ..., "event": {...}}) on stdout, and `--notify`
sends them as `NOTIFY market_data` on PostgreSQL (`streaming.events.NotifyPublisher`, the bus's own
batching), the channel `streaming.events.listen_postgres` forwards into a subscriber's own bus, so a
strategy sees replayed history exactly as it sees the live stream.
"""

from __future__ import annotations

import sys

import click

from marketdata_assets.binance.intervals import InvalidInputError, parse_day, validate_interval
from marketdata_assets.cli.options import MultiValueOption, settings_from_flags, settings_options

# storage, the replayer and the event bus are imported inside the command: `marketdata replay --help` stays light


@click.command("replay")
@click.option("--symbols", cls=MultiValueOption, required=True, help="e.g. --symbols BTCUSDT ETHUSDT")
@click.option("--start", required=True, help="First UTC day, YYYY-MM-DD.")
@click.option("--end", required=True, help="Last UTC day, YYYY-MM-DD, inclusive.")
@click.option("--interval", default=None, help="Kline interval (default DEFAULT_INTERVAL or 1m).")
@click.option("--speed", default="max", show_default=True,
              help="Times real time (60 = an hour of history per minute) or 'max'.")
@click.option("--no-klines", is_flag=True, help="Replay aggregate trades only.")
@click.option("--no-trades", is_flag=True, help="Replay klines only.")
@click.option("--jsonl", is_flag=True, help="Print every event as a JSON line on stdout.")
@click.option("--notify", is_flag=True, help="Send events as NOTIFY market_data (PostgreSQL only).")
@settings_options
def replay_command(symbols, start, end, interval, speed, no_klines, no_trades, jsonl, notify, **flags) -> None:
    """Publish stored history through the event bus in exchange-time order, paced by --speed."""
    import orjson

    from marketdata_assets.storage.engine import describe_url, make_engine
    from streaming.events import TOPICS, EventBus, NotifyPublisher
    from streaming.replay import Replayer, parse_speed

    settings = settings_from_flags(**flags)
    try:
        pace = parse_speed(speed)
        first, last = parse_day(start), parse_day(end)
        if last < first:
            raise InvalidInputError(f"--end {last} is before --start {first}")
        chosen = None if no_klines else validate_interval(interval or settings.default_interval)
        if no_klines and no_trades:
            raise InvalidInputError("--no-klines and --no-trades leave nothing to replay")
        settings.require_existing_store()
        engine = make_engine(settings.database_url)
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from None
    if notify and engine.dialect.name != "postgresql":
        raise click.UsageError(f"--notify needs PostgreSQL; DATABASE_URL is {describe_url(settings.database_url)}")
    bus = EventBus()
    publisher = None
    if notify:
        url = engine.url.set(drivername="postgresql")
        publisher = NotifyPublisher(url.render_as_string(hide_password=False))
        publisher.attach(bus)
    if jsonl:
        out = sys.stdout.buffer
        for topic in TOPICS:
            bus.subscribe(topic, lambda event, topic=topic: out.write(
                orjson.dumps({"topic": topic, "event": event}) + b"\n"))
    import asyncio

    try:
        stats = asyncio.run(Replayer(engine, bus).run([s.upper() for s in symbols], first, last, interval=chosen,
                                                      trades=not no_trades, speed=pace))
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        if publisher is not None:
            publisher.close()
        engine.dispose()
    sys.stdout.flush()
    click.echo(f"replayed {stats.events} events ({stats.klines} klines, {stats.trades} trades) in "
               f"{stats.seconds:.2f} s ({stats.rate:,.0f} events/s)", err=True)
