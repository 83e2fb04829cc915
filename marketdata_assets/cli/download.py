"""`marketdata download`: a historical or incremental kline load in this process, with a progress bar.

Every input is checked before the first download (exit code 2 naming the input): symbols against
exchangeInfo, intervals, dates, listing dates, URLs. Then each (symbol, interval) runs through the same
`KlineLoader.load` that the Dagster assets call, and a closing table gives rows and gaps.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from datetime import date, timedelta
from typing import TYPE_CHECKING

import click

from marketdata_assets.binance.intervals import (
    InvalidInputError,
    day_of_ms,
    days_between,
    parse_day,
    validate_interval,
    validate_symbol,
)
from marketdata_assets.cli.options import MultiValueOption, settings_from_flags, settings_options, today_utc

if TYPE_CHECKING:
    from marketdata_assets.ingest.contract import DayResult

# the loaders, storage, tqdm and the Binance client are imported inside the command, so that
# `marketdata download --help` and bad input (exit 2) stay light


MAX_DAYS = 10_000  # ~27 years: more than Binance futures have existed


def resolve_days(start: str | None, end: str | None, days: int | None, today: date) -> list[date]:
    """--start/--end (inclusive) or --days N (the last N days up to today, today included)."""
    if days is not None:
        if start or end:
            raise InvalidInputError("give either --days or --start/--end, not both")
        if not 1 <= days <= MAX_DAYS:
            raise InvalidInputError(f"--days {days}: expected 1..{MAX_DAYS:,}")
        return days_between(today - timedelta(days=days - 1), today)
    if not start:
        raise InvalidInputError("missing --start (or --days)")
    first = parse_day(start)
    last = parse_day(end) if end else today
    if last > today:
        raise InvalidInputError(f"--end {last}: is in the future (today is {today} UTC)")
    return days_between(first, last)


def check_listing(symbols: dict, wanted: list[str], first_day: date) -> None:
    for symbol in wanted:
        info = symbols.get(symbol)
        if info is None:
            raise InvalidInputError(f"unknown symbol {symbol!r}: the exchange does not list it")
        if info.onboard_ms is not None and first_day < day_of_ms(info.onboard_ms):
            raise InvalidInputError(
                f"--start {first_day}: is before {symbol}'s listing on {day_of_ms(info.onboard_ms)}"
            )


def summary_table(results: list[DayResult]) -> str:
    groups: dict[tuple[str, str], list[DayResult]] = defaultdict(list)
    for result in results:
        groups[(result.symbol, result.interval)].append(result)
    header = f"{'symbol':<12} {'interval':<8} {'days':>5} {'rows':>10} {'archive':>9} {'rest':>8} " \
             f"{'gaps':>5} {'gap bars':>8} {'failed':>6}"
    lines = [header, "-" * len(header)]
    for (symbol, interval), group in sorted(groups.items()):
        gaps = [g for r in group for g in r.exchange_gaps]
        sources: dict[str, int] = defaultdict(int)
        for r in group:
            for source, n in r.sources.items():
                sources[source] += n
        lines.append(
            f"{symbol:<12} {interval:<8} {len(group):>5} {sum(r.stored_rows for r in group):>10} "
            f"{sources['archive']:>9} {sources['rest']:>8} {len(gaps):>5} {sum(g.bars for g in gaps):>8} "
            f"{sum(r.failed for r in group):>6}"
        )
    return "\n".join(lines)


@click.command("download")
@click.option("--symbols", cls=MultiValueOption, required=True, help="e.g. --symbols BTCUSDT ETHUSDT")
@click.option("--intervals", cls=MultiValueOption, default=None, help="e.g. --intervals 1m 1h")
@click.option("--start", help="First UTC day, YYYY-MM-DD.")
@click.option("--end", help="Last UTC day, YYYY-MM-DD, inclusive (default: today).")
@click.option("--days", type=int, help="The last N days up to today instead of --start/--end.")
@click.option("--force", is_flag=True, help="Reload days whose archive checksum is unchanged.")
@click.option("--verify", is_flag=True,
              help="Ask the archive for every recorded day's checksum (a re-run otherwise trusts settled days "
                   "confirmed within 30 days and checks older ones by one bucket listing).")
@click.option("--source", type=click.Choice(["auto", "archive", "rest"]), default="auto", show_default=True,
              help="auto: the archive for settled days, REST for the rest and every hole; archive: the archive "
                   "only (no REST request; holes stay fillable); rest: REST only.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--in-dagster", is_flag=True,
              help="Run the Dagster kline assets and their checks in this process (recorded in DAGSTER_HOME).")
@settings_options
def download_command(symbols, intervals, start, end, days, force, verify, source, no_progress, in_dagster,
                     **flags) -> None:
    """Download klines into the database: archive for settled days, REST for the rest and every hole."""
    settings = settings_from_flags(**flags)
    try:
        wanted = [validate_symbol(s.upper()) for s in symbols]
        chosen = [validate_interval(i) for i in (intervals or (settings.default_interval,))]
        resolve_days(start, end, days, today_utc())  # syntax and order, before touching the network
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from None
    if in_dagster and source != "auto":
        raise click.UsageError(f"--source {source}: the Dagster assets choose their sources (auto); drop "
                               "--in-dagster or --source")
    if in_dagster and not os.environ.get("DAGSTER_HOME"):
        raise click.UsageError("--in-dagster: DAGSTER_HOME is not set, so the runs would go to a throwaway "
                               "instance the UI never shows; export DAGSTER_HOME (make run uses .dagster_home)")

    from tqdm import tqdm

    from marketdata_assets.binance.errors import BinanceError
    from marketdata_assets.binance.exchange_info import parse_exchange_info
    from marketdata_assets.ingest.runtime import open_runtime
    from marketdata_assets.storage.engine import describe_url

    with open_runtime(settings) as runtime:
        try:
            # the exchange's clock says what "today" is; its exchangeInfo which symbols exist and since when
            day_list = resolve_days(start, end, days, today_utc(runtime.rest.server_time_ms()))
            known = parse_exchange_info(runtime.rest.exchange_info())
            check_listing(known, wanted, day_list[0])
        except InvalidInputError as exc:
            raise click.UsageError(str(exc)) from None
        except BinanceError as exc:
            raise click.ClickException(f"cannot reach Binance at {settings.fapi_url}: {exc}") from None
        if in_dagster:
            _download_in_dagster(settings, wanted, chosen, day_list, runtime, no_progress)
            return
        loaders = {interval: runtime.kline_loader(interval, symbols=known, source=source) for interval in chosen}
        results: list[DayResult] = []
        total = len(wanted) * len(chosen) * len(day_list)
        click.echo(f"loading {total} symbol-interval-days into {describe_url(settings.database_url)}", err=True)
        failure: Exception | None = None
        with tqdm(total=total, unit="day", disable=no_progress, dynamic_ncols=True) as bar:
            def advance(result: DayResult) -> None:
                results.append(result)
                bar.set_postfix_str(result.label, refresh=False)
                bar.update(1)

            try:
                for symbol in wanted:
                    for interval in chosen:
                        loaders[interval].load(symbol, day_list, force=force, verify=verify, progress=advance)
            except Exception as exc:  # noqa: BLE001 - reported below; committed days stay intact
                failure = exc
        click.echo(summary_table(results))
        click.echo(record_in_dagster(runtime, results), err=True)
    failed = [r for r in results if r.failed]
    for result in failed[:20]:
        click.echo(f"failed: {result.label}: {result.error}", err=True)
    written: Counter[str] = sum((loader.written for loader in loaders.values()), Counter())
    rechecked: Counter[str] = sum((loader.rechecked for loader in loaders.values()), Counter())
    click.echo(closing_line(results, written, rechecked))
    if failure is not None:
        from marketdata_assets.redact import one_line

        raise click.ClickException(
            f"stopped after {len(results)} of {total} days: {type(failure).__name__}: {one_line(failure)} "
            "(every day reported above is stored and recorded in the ledger)"
        )
    if failed:
        raise SystemExit(1)


def closing_line(results: list[DayResult], written: Counter[str], rechecked: Counter[str] | None = None) -> str:
    """What the load did, in words: days stored, skipped and why, failed; then what the writes changed."""
    by_status = Counter(str(r.status) for r in results)
    stored = by_status["complete"] + by_status["incomplete"]
    parts = [f"{stored} day(s) stored"]
    if by_status["incomplete"]:
        parts[0] += f" ({by_status['incomplete']} not settled yet)"
    if by_status["unchanged"]:
        from marketdata_assets.ingest.archive_recheck import describe_rechecks

        how = describe_rechecks(rechecked or {})
        parts.append(f"{by_status['unchanged']} skipped: unchanged (archive checksum as recorded"
                     f"{': ' + how if how else ''}; --verify asks the archive again, --force reloads)")
    if by_status["out_of_range"]:
        parts.append(f"{by_status['out_of_range']} outside the symbol's trading range")
    if by_status["failed"]:
        parts.append(f"{by_status['failed']} failed (nothing stored for them)")
    rows = (f"rows inserted {written['inserted']}, updated {written['updated']}, identical "
            f"{written['unchanged']}")
    return f"{'; '.join(parts)}. {rows}"


def record_in_dagster(runtime, results: list[DayResult]) -> str:
    """Each stored day as its partition's materialization in DAGSTER_HOME's instance (defs/datasets/record.py),
    so the UI shows what this load stored; one line saying what was recorded, or why nothing was."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return ("not recorded in Dagster: DAGSTER_HOME is not set (export it, e.g. to the .dagster_home of "
                "make run, and the UI shows these days as materialized)")
    if not results:
        return "not recorded in Dagster: no day was loaded"
    try:
        import dagster as dg

        from marketdata_assets.defs.datasets.record import record_loads

        with dg.DagsterInstance.get() as instance:
            return record_loads(instance, runtime, results).line(home)
    except Exception as exc:  # noqa: BLE001 - the days are stored; say in one line why Dagster does not know
        from marketdata_assets.redact import one_line

        return f"not recorded in Dagster (DAGSTER_HOME={home}): {type(exc).__name__}: {one_line(exc)}"


def _download_in_dagster(settings, symbols: list[str], intervals: list[str], day_list: list[date], runtime,
                         no_progress: bool) -> None:
    from tqdm import tqdm

    from marketdata_assets.cli.in_dagster import materialize_klines
    from marketdata_assets.ingest.contract import DayResult

    try:
        with tqdm(total=len(symbols) * len(intervals), unit="run", disable=no_progress) as bar:
            errors = materialize_klines(
                settings, symbols, intervals, day_list[0], day_list[-1],
                on_run=lambda symbol, interval, ok: (bar.set_postfix_str(f"{symbol} {interval}"), bar.update(1)),
            )
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from None
    results = [
        DayResult.from_ledger(row)
        for symbol in symbols for interval in intervals
        for row in runtime.repo.get_ledger("klines", symbol, interval, day_list[0], day_list[-1])
    ]
    click.echo(summary_table(results))
    for error in errors:
        click.echo(f"failed: {error}", err=True)
    if errors:
        raise SystemExit(1)
