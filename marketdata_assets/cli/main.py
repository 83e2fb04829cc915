"""`marketdata`: the console script. Subcommands load lazily so that `marketdata download` never imports
Dagster and `marketdata stream` stays light.

`marketdata --help` lists the commands from COMMANDS alone (name, module, one-line help), without importing
any command module; a module is imported only when its command runs or its own `--help` is asked for.
tests/test_cli_startup.py checks that each one-line help here equals the command's own.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from gettext import gettext as _
from typing import NamedTuple

import click


class CommandEntry(NamedTuple):
    target: str  # "module:attribute" of a click command
    short_help: str  # the command's short_help, or the first paragraph of its docstring

    @property
    def module(self) -> str:
        return self.target.split(":")[0]


# name -> (where the click command lives, its one-line help); the module is imported only when needed
COMMANDS: dict[str, CommandEntry] = {
    "download": CommandEntry(
        "marketdata_assets.cli.download:download_command",
        "Download klines into the database: archive for settled days, REST for the rest and every hole."),
    "db": CommandEntry("marketdata_assets.cli.db:db_group", "Database schema (Alembic migrations)."),
    "sim": CommandEntry(
        "marketdata_assets.cli.sim:sim_command",
        "Run the local Binance (REST + WebSocket + archive) on one port: see `marketdata sim --help`."),
    "backfill": CommandEntry(
        "marketdata_assets.cli.backfill:backfill_command",
        "Launch a backfill of kline assets on a running Dagster (UI + daemon)."),
    "gaps": CommandEntry(
        "marketdata_assets.cli.gaps:gaps_command",
        "Missing bars and their class per symbol, interval and day, from the partition ledger."),
    "audit": CommandEntry(
        "marketdata_assets.cli.audit:audit_command",
        "Check stored kline days (checks only, nothing loaded); failures go to the repair sensors."),
    "stream": CommandEntry(
        "streaming.cli:stream_command",
        "Stream live klines, trades, order books, mark price/funding and tickers into the database."),
    "export": CommandEntry(
        "marketdata_assets.cli.export:export_command",
        "Export a stored table as a dataset partitioned by symbol=/date= (readable by pandas, polars, Spark)."),
    "replay": CommandEntry(
        "streaming.replay_cli:replay_command",
        "Publish stored history through the event bus in exchange-time order, paced by --speed."),
}


def module_present(module_name: str) -> bool:
    """Whether the module can be found, without executing it (its parent packages are imported)."""
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:  # a parent package is absent
        return False


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        # a command whose module is absent is simply not offered
        return sorted(name for name, entry in COMMANDS.items() if module_present(entry.module))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._load(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's own listing, with the one-line help from COMMANDS instead of importing every command."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        # a bare click.Command carrying the help shortens it exactly as the real command would
        rows = [(name, click.Command(name, help=COMMANDS[name].short_help).get_short_help_str(limit))
                for name in names]
        with formatter.section(_("Commands")):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        """The error boundary of every command: bad input -> one line and exit 2; a database or host that
        cannot be used -> one line and exit 1; anything else -> one line and exit 1, the traceback only with
        -vv. Every line has its credentials masked."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort, SystemExit,
                KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the boundary
            if VERBOSITY[0] >= 2:
                raise
            raise _one_line(exc) from None

    @staticmethod
    def _load(name: str) -> click.Command | None:
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        module_name, attribute = entry.target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # a command whose module is absent is simply not offered; a broken import inside it is an error
            if exc.name == module_name:
                return None
            raise
        return getattr(module, attribute, None)


VERBOSITY = [0]  # -v count, set by the group before a command runs
DATABASE_ERRORS = ("OperationalError", "InterfaceError", "DatabaseError", "ProgrammingError")


def _one_line(exc: Exception) -> click.ClickException:
    from marketdata_assets.redact import one_line

    text = one_line(exc, limit=400)
    kind = type(exc)
    if kind.__name__ == "InvalidInputError":
        return click.UsageError(text)
    if kind.__module__.split(".")[0] in ("sqlalchemy", "psycopg", "psycopg2", "sqlite3") and \
            kind.__name__ in DATABASE_ERRORS:
        return click.ClickException(f"the database cannot be used: {text} (-vv for the traceback)")
    if isinstance(exc, OSError | TimeoutError):
        return click.ClickException(f"{text} (-vv for the traceback)")
    if kind.__name__ in ("BinanceUnavailableError", "UpstreamDownError"):
        return click.ClickException(f"cannot reach Binance: {text}")
    return click.ClickException(f"{kind.__name__}: {text} (-vv for the traceback)")


@click.group(cls=LazyGroup)
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Binance USD-M Futures market data: download, backfill, stream, repair and query."""
    VERBOSITY[0] = verbose
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main() -> None:
    cli(prog_name="marketdata")


if __name__ == "__main__":
    main()
