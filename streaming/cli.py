"""`marketdata stream` (and `python -m streaming`): run the sidecar until SIGTERM / Ctrl-C.

Settings (URLs, database, DEFAULT_DEPTH, STORE_TO_DB, PUBLISH_EVENTS) come from the environment, with
flags on top. An unknown symbol is refused before anything connects (checked against exchangeInfo).
"""

from __future__ import annotations

import contextlib
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from marketdata_assets.binance.intervals import InvalidInputError
from marketdata_assets.cli.options import MultiValueOption, settings_from_flags, settings_options
from marketdata_assets.settings import Settings
from streaming.streams import DATA_TYPES  # light: the stream vocabulary only

if TYPE_CHECKING:
    import asyncio

    from streaming.service import MarketDataService

# streaming.service (SQLAlchemy, aiohttp, picows, ...) is imported where the service is built, so that
# `marketdata stream --help` and bad input stay light
log = logging.getLogger("streaming")


async def run_service(service: MarketDataService, stop: asyncio.Event | None = None) -> None:
    """Start, wait for SIGTERM/SIGINT (or `stop`), then stop cleanly (flush, close)."""
    import asyncio

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread / not supported
            loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
    except BaseException:
        await service.stop()  # whatever started (connections, writer) is closed and flushed
        raise
    names = [c.route for c in service.connections]
    log.info("streaming %d streams on %d connections (%s)",
             sum(len(c.specs) for c in service.connections), len(names), ", ".join(names))
    try:
        await stop.wait()
    finally:
        log.info("stopping: flushing what was received")
        await service.stop()
        log.info("stopped cleanly")


def build_service(settings: Settings, symbols: tuple[str, ...], data_types: tuple[str, ...],
                  interval: str | None, health_port: int | None, spool_dir: str | None,
                  book_interval: float, spool_max_mb: float | None = None,
                  max_buffered_rows: int = 20_000, db_timeout: float = 15.0) -> MarketDataService:
    if not symbols:
        raise InvalidInputError("no symbols given: pass --symbols BTCUSDT ETHUSDT")
    if spool_dir is not None:
        try:
            Path(spool_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInputError(f"--spool-dir {spool_dir}: {exc.strerror or exc}") from None
    from streaming.service import DEFAULT_DATA_TYPES, MarketDataService

    return MarketDataService(settings, symbols=symbols, data_types=data_types or DEFAULT_DATA_TYPES,
                             interval=interval, health_port=health_port, spool_dir=spool_dir,
                             book_interval_s=book_interval, max_pending=max_buffered_rows,
                             stuck_after_s=db_timeout,
                             spool_max_bytes=None if spool_max_mb is None else int(spool_max_mb * 1024 * 1024))


def _finite(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """FloatRange lets nan through (every comparison with it is false)."""
    if value is not None and value != value:
        raise click.BadParameter("nan is not a number", ctx=ctx, param=param)
    return value


@click.command("stream")
@click.option("--symbols", cls=MultiValueOption, required=True, help="Symbols to stream: BTCUSDT ETHUSDT ...")
@click.option("--streams", "--data-types", "data_types", cls=MultiValueOption,
              help=f"Data types (default all): {', '.join(DATA_TYPES)}.")
@click.option("--interval", default=None, help="Kline interval (default DEFAULT_INTERVAL, 1m).")
@click.option("--health-port", type=click.IntRange(0, 65535), default=8081, show_default=True,
              help="Port of /health and /metrics (0 picks a free one).")
@click.option("--spool-dir", type=click.Path(file_okay=False), default=None,
              help="Where batches go while the database is down (default: a folder of this sidecar's own "
                   "under $TMPDIR/marketdata-stream-spool, from its database, symbols and streams).")
@click.option("--spool-max-mb", type=click.FloatRange(min=0.001, max=1e9), default=None, callback=_finite,
              help="Cap on the spool's size; beyond it (or when its disk is full) batches wait in memory and "
                   "the streams slow down until the database is back (default: the disk's free space).")
@click.option("--max-buffered-rows", type=click.IntRange(min=100, max=10_000_000), default=20_000,
              show_default=True,
              help="Rows the sidecar keeps in memory for the writer; beyond them the streams wait (backpressure).")
@click.option("--db-timeout", type=click.FloatRange(min=1, max=3600), default=15.0, show_default=True,
              callback=_finite,
              help="Seconds a database call may hang (a frozen server) before it is cut off and its batch "
                   "spooled; /health says db_stuck meanwhile.")
@click.option("--book-interval", type=click.FloatRange(min=0.1, max=3600), default=1.0, show_default=True,
              callback=_finite,
              help="Seconds between stored top-N order book snapshots.")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              default="INFO", show_default=True)
@settings_options
def stream_command(symbols: tuple[str, ...], data_types: tuple[str, ...] | None, interval: str | None,
                   health_port: int, spool_dir: str | None, spool_max_mb: float | None, max_buffered_rows: int,
                   db_timeout: float, book_interval: float, log_level: str, **flags: str | None) -> None:
    """Stream live klines, trades, order books, mark price/funding and tickers into the database."""
    # force: the group's -v has configured logging already, and --log-level must win over it
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        force=True)
    settings = settings_from_flags(**flags)
    try:
        service = build_service(settings, symbols, tuple(data_types or ()), interval, health_port,
                                spool_dir and str(Path(spool_dir)), book_interval, spool_max_mb,
                                max_buffered_rows, db_timeout)
        import asyncio

        asyncio.run(run_service(service))
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from None


def main() -> None:
    stream_command(prog_name="python -m streaming")
