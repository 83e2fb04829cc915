"""`marketdata sim`: the local Binance. The simulator package is imported only when this command runs,
so production code never depends on it."""

from __future__ import annotations

import click


@click.command("sim", context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                        "help_option_names": []})
@click.pass_context
def sim_command(ctx: click.Context) -> None:
    """Run the local Binance (REST + WebSocket + archive) on one port: see `marketdata sim --help`."""
    from marketdata_sim.cli import main

    main(list(ctx.args))
