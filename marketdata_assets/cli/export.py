"""`marketdata export`: stored rows -> Parquet (zstd, exact decimals) or CSV, partitioned by symbol and date."""

from __future__ import annotations

import os
from pathlib import Path

import click

from marketdata_assets.binance.intervals import InvalidInputError, parse_day
from marketdata_assets.cli.options import MultiValueOption, settings_from_flags, settings_options

# marketdata_assets.export (pyarrow, SQLAlchemy) is imported inside the command so that `marketdata export
# --help` stays light; its names for the help text are kept here (tests/test_cli_startup.py checks them
# against export.table_names() and export.writer.FORMATS)
TABLE_NAMES = ("agg_trades", "funding_rates", "klines", "mark_price_updates", "order_book_snapshots", "ticker_24h")
FORMATS = ("parquet", "csv")


def _non_empty_path(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """An empty --out would mean the current folder by accident: refused."""
    if value is not None and not str(value).strip(" ."):
        raise click.BadParameter("an output directory is required (got an empty path)", ctx=ctx, param=param)
    if value is not None:  # unwritable or under a file: said before any row is read
        try:
            value.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise click.BadParameter(f"{value}: {exc.strerror or exc}", ctx=ctx, param=param) from None
        if not os.access(value, os.W_OK):
            raise click.BadParameter(f"{value}: not writable", ctx=ctx, param=param)
    return value


@click.command("export")
@click.option("--table", "table", required=True, help=f"One of: {', '.join(TABLE_NAMES)}.")
@click.option("--symbols", cls=MultiValueOption, required=True, help="e.g. --symbols BTCUSDT ETHUSDT")
@click.option("--interval", default=None, help="Kline interval (klines only; default DEFAULT_INTERVAL or 1m).")
@click.option("--start", required=True, help="First UTC day, YYYY-MM-DD.")
@click.option("--end", required=True, help="Last UTC day, YYYY-MM-DD, inclusive.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="parquet", show_default=True)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), callback=_non_empty_path,
              help="Output directory.")
@settings_options
def export_command(table, symbols, interval, start, end, fmt, out, **flags) -> None:
    """Export a stored table as a dataset partitioned by symbol=/date= (readable by pandas, polars, Spark)."""
    from marketdata_assets.export import export_table, table_spec
    from marketdata_assets.storage.engine import describe_url, make_engine

    settings = settings_from_flags(**flags)
    try:
        spec = table_spec(table)
        first, last = parse_day(start), parse_day(end)
        if spec.has_interval and interval is None:
            interval = settings.default_interval
        settings.require_existing_store()
        engine = make_engine(settings.database_url)
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        result = export_table(engine, table, [s.upper() for s in symbols], first, last, out, fmt=fmt,
                              interval=interval)
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(f"exported from {describe_url(settings.database_url)} to {result.root}")
    for symbol, rows in result.rows.items():
        click.echo(f"{symbol:<14} {rows:>12} rows")
    rate = result.total_rows / result.seconds if result.seconds else 0.0
    click.echo(f"{result.total_rows} rows in {len(result.files)} files, {result.seconds:.2f} s ({rate:,.0f} rows/s)")
