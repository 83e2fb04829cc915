"""`marketdata sim`: the local Binance. The simulator package is imported only when this command runs,
so production code never depends on it."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import click

HELP_FLAGS = ("-h", "--help")


@click.command("sim", context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                        "help_option_names": []})
@click.pass_context
def sim_command(ctx: click.Context) -> None:
    """Run the local Binance (REST + WebSocket + archive) on one port: see `marketdata sim --help`."""
    args = list(ctx.args)
    if any(arg in HELP_FLAGS for arg in args):
        # `marketdata_sim/__init__.py` imports the whole simulator (numpy, aiohttp); for the help alone,
        # run its argparse CLI module without the package (that module imports argparse only at the top)
        light = _sim_cli_without_package()
        if light is not None:
            light.main(args)  # argparse prints the help and exits 0 (or 2 on a bad argument)
            return
    from marketdata_sim.cli import main

    main(args)


def _sim_cli_without_package() -> ModuleType | None:
    """marketdata_sim/cli.py executed on its own (not registered in sys.modules), or None if not found."""
    package = importlib.util.find_spec("marketdata_sim")  # finds the package without importing it
    if package is None or not package.submodule_search_locations:
        return None
    for location in package.submodule_search_locations:
        spec = importlib.util.spec_from_file_location("marketdata_sim.cli", f"{location}/cli.py")
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except FileNotFoundError:
            continue
        return module
    return None
