"""`marketdata audit`: run the kline checks on stored days without loading anything.

Every check of `klines_<interval>` (rows, gaps, continuity, agreement with 1m, and the audit of stored
rows against the ledger and the digest recorded at load) for each symbol over [--start, --end], as one
checks-only Dagster run per symbol and interval in this process. With DAGSTER_HOME set the results land
in that instance: the UI shows them per partition and the repair sensors reload what failed.
Exit 0: every check holds (warnings allowed); 1: a check failed or a run could not complete; 2: bad input.
"""

from __future__ import annotations

import click

from marketdata_assets.binance.intervals import InvalidInputError, parse_day, validate_interval, validate_symbol
from marketdata_assets.cli.options import MultiValueOption, settings_from_flags, settings_options, today_utc

SHOWN = 50  # problem lines printed before "... and N more"


@click.command("audit")
@click.option("--symbols", cls=MultiValueOption, required=True, help="e.g. --symbols BTCUSDT ETHUSDT")
@click.option("--intervals", cls=MultiValueOption, default=None, help="e.g. --intervals 1m 1h (default: 1m)")
@click.option("--start", required=True, help="First UTC day, YYYY-MM-DD.")
@click.option("--end", help="Last UTC day, YYYY-MM-DD, inclusive (default: --start).")
@settings_options
def audit_command(symbols, intervals, start, end, **flags) -> None:
    """Check stored kline days (checks only, nothing loaded); failures go to the repair sensors."""
    settings = settings_from_flags(**flags)
    try:
        wanted = [validate_symbol(s.upper()) for s in symbols]
        chosen = [validate_interval(i) for i in (intervals or (settings.default_interval,))]
        first = parse_day(start)
        last = parse_day(end) if end else first
        if last < first:
            raise InvalidInputError(f"--end {last}: is before --start {first}")
        if last > today_utc():
            raise InvalidInputError(f"--end {last}: is in the future (today is {today_utc()} UTC)")
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from None

    from marketdata_assets.cli.in_dagster import audit_klines, instance_is_persistent

    try:
        outcomes, errors = audit_klines(settings, wanted, chosen, first, last)
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from None
    problems = [o for o in outcomes if not o.passed]
    for outcome in problems[:SHOWN]:
        word = "WARNING" if outcome.warning else "FAILED"
        description = outcome.description.removeprefix(f"{outcome.partition}: ")
        click.echo(f"{word} {outcome.asset} {outcome.partition} {outcome.check}: {description}")
    if len(problems) > SHOWN:
        click.echo(f"... and {len(problems) - SHOWN} more")
    partitions = {(o.asset, o.partition) for o in outcomes}
    failed = {(o.asset, o.partition) for o in problems if not o.warning}
    warned = {(o.asset, o.partition) for o in problems if o.warning} - failed
    click.echo(f"checked {len(partitions)} partition(s) x {len({o.check for o in outcomes})} check(s): "
               f"{len(partitions) - len(failed) - len(warned)} passed, {len(warned)} with warnings, "
               f"{len(failed)} failed")
    if not instance_is_persistent():
        click.echo("(DAGSTER_HOME is not set: the results were not recorded in a Dagster instance)", err=True)
    for error in errors:
        click.echo(f"error: {error}", err=True)
    if failed or errors:
        raise SystemExit(1)
