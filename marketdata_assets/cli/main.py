"""`marketdata`: the console script. Subcommands load lazily so that `marketdata download` never imports
Dagster and `marketdata stream` stays light."""

from __future__ import annotations

import importlib
import logging

import click

# name -> "module:attribute" of a click command; imported only when that command runs (or --help lists it)
COMMANDS = {
    "download": "marketdata_assets.cli.download:download_command",
    "db": "marketdata_assets.cli.db:db_group",
    "sim": "marketdata_assets.cli.sim:sim_command",
    "backfill": "marketdata_assets.cli.backfill:backfill_command",
    "gaps": "marketdata_assets.cli.gaps:gaps_command",
    "audit": "marketdata_assets.cli.audit:audit_command",
    "stream": "streaming.cli:stream_command",
    "export": "marketdata_assets.cli.export:export_command",
    "replay": "streaming.replay_cli:replay_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._load(name, quiet=True) is not None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._load(name)

    @staticmethod
    def _load(name: str, quiet: bool = False) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # a command whose module is absent is simply not offered; a broken import inside it is an error
            if quiet or exc.name == module_name:
                return None
            raise
        return getattr(module, attribute, None)


@click.group(cls=LazyGroup)
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Binance USD-M Futures market data: download, backfill, stream, repair and query."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main() -> None:
    cli(prog_name="marketdata")


if __name__ == "__main__":
    main()
