"""Click helpers shared by the `marketdata` commands: multi-value options and settings flags.

`--symbols BTCUSDT ETHUSDT` (space-separated, like the seed's scripts) needs an option that takes every
following value up to the next flag; click's own `multiple=True` wants `--symbols A --symbols B`. Both work.

Light on purpose (click, the standard library, intervals and settings): every command module imports this at
import time, and `marketdata <command> --help` must not load pandas, SQLAlchemy or Dagster.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import click

from marketdata_assets.binance.intervals import InvalidInputError, ms_to_datetime
from marketdata_assets.settings import Settings


class MultiValueOption(click.Option):
    """An option that consumes values until the next option: `--symbols A B C`. Also accepts `A,B`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("multiple", True)
        super().__init__(*args, **kwargs)
        self._previous_process = None

    def add_to_parser(self, parser, ctx):
        result = super().add_to_parser(parser, ctx)
        for name in self.opts:
            our_option = parser._long_opt.get(name) or parser._short_opt.get(name)
            if our_option is None:
                continue
            previous = our_option.process

            def process(value, state, previous=previous):
                values = [value]
                while state.rargs and not state.rargs[0].startswith("-"):
                    values.append(state.rargs.pop(0))
                for item in values:
                    previous(item, state)

            our_option.process = process
        return result

    def process_value(self, ctx, value):
        value = super().process_value(ctx, value)
        if value is None:
            return value
        flat: list[str] = []
        for item in value:
            flat += [part for part in str(item).replace(",", " ").split() if part]
        if value and not flat:  # given, but only empty strings: a mistake, not "everything"
            raise click.BadParameter("give at least one value (an empty string is none)", ctx=ctx, param=self)
        return tuple(flat)


def settings_options(func: Callable) -> Callable:
    """--fapi-url/--archive-url/--archive-listing-url/--ws-url/--database-url, defaulting to the environment."""
    options = [
        click.option("--database-url", envvar="DATABASE_URL", help="Market-data database URL."),
        click.option("--fapi-url", envvar="BINANCE_FAPI_URL", help="REST base URL (default https://fapi.binance.com)."),
        click.option("--archive-url", envvar="BINANCE_ARCHIVE_URL", help="Archive base URL (data.binance.vision)."),
        click.option("--archive-listing-url", envvar="BINANCE_ARCHIVE_LISTING_URL", help="S3 XML listing URL."),
        click.option("--ws-url", envvar="BINANCE_WS_URL", help="WebSocket base URL (wss://fstream.binance.com)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def settings_from_flags(**flags: str | None) -> Settings:
    """Settings from the environment with the flags on top; bad values exit 2 naming the setting."""
    try:
        return Settings.from_env(**{k: v for k, v in flags.items() if v})
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from None


def today_utc(now_ms: int | None = None) -> date:
    """Today in UTC, by the given clock (e.g. the exchange's server time) or the local one.

    The same as `marketdata_assets.ingest.klines.today_utc`, without importing the loaders."""
    if now_ms is not None:
        return ms_to_datetime(now_ms).date()
    return datetime.now(UTC).date()
