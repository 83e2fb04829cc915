"""`marketdata gaps`: what the partition ledger says is missing, per symbol, interval and day.

Reads `partition_ledger` only (no Dagster import, no Binance call): the loads record expected and actual
rows, the missing ranges with their class and the sources; the checks record their status and the repair
sensor its attempts. By default only days that need attention are listed; `--all` lists every day.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date

import click

from marketdata_assets.binance.intervals import (
    InvalidInputError,
    parse_day,
    validate_interval,
    validate_symbol,
)
from marketdata_assets.cli.options import MultiValueOption, settings_from_flags

DATASET = "klines"
# storage.ledger (SQLAlchemy) and validation.gaps (numpy) are imported where they are used, so that
# `marketdata gaps --help` and bad input stay light


def gap_bars(missing: Sequence[dict]) -> dict[str, int]:
    from marketdata_assets.validation.gaps import EXCHANGE_GAP, FILLABLE, OUT_OF_RANGE

    out = {FILLABLE: 0, EXCHANGE_GAP: 0, OUT_OF_RANGE: 0}
    for gap in missing or []:
        cls = gap.get("cls", FILLABLE)
        out[cls if cls in out else FILLABLE] += int(gap.get("bars", 0))
    return out


def needs_attention(row) -> bool:
    from marketdata_assets.storage.ledger import CheckStatus, LedgerStatus
    from marketdata_assets.validation.gaps import EXCHANGE_GAP, FILLABLE

    bars = gap_bars(row.missing)
    return (
        row.status in (LedgerStatus.FAILED, LedgerStatus.INCOMPLETE)
        or bars[FILLABLE] > 0
        or bars[EXCHANGE_GAP] > 0
        or row.check_status in (CheckStatus.FAILED, CheckStatus.WARNING)
    )


def ledger_report(repo, symbols: Sequence[str], intervals: Sequence[str], start: date | None,
                  end: date | None, show_all: bool = False) -> list[dict]:
    """Ledger rows as plain dicts (the table and --json both print these)."""
    from marketdata_assets.validation.gaps import EXCHANGE_GAP, FILLABLE, OUT_OF_RANGE

    rows = []
    for symbol in symbols or [None]:
        for interval in intervals or [None]:
            rows += repo.get_ledger(DATASET, symbol, interval, start, end)
    out = []
    for row in rows:
        if not show_all and not needs_attention(row):
            continue
        bars = gap_bars(row.missing)
        out.append({
            "symbol": row.symbol, "interval": row.interval, "day": row.day.isoformat(),
            "status": row.status, "rows": row.actual_rows, "expected": row.expected_rows,
            "fillable_bars": bars[FILLABLE], "exchange_gap_bars": bars[EXCHANGE_GAP],
            "check": row.check_status or "", "repairs": row.repair_attempts or 0,
            "sources": dict(row.sources or {}), "archive": bool(row.archive_checksum),
            "gaps": [{k: g.get(k) for k in ("cls", "start", "end", "bars")} for g in row.missing or []
                     if g.get("cls") != OUT_OF_RANGE],
            "error": row.last_error or "",
        })
    return out


def _table(report: list[dict]) -> str:
    headers = ["symbol", "interval", "day", "status", "rows", "expected", "fillable", "exch.gap", "check",
               "repairs", "sources", "error"]
    lines = [[r["symbol"], r["interval"], r["day"], r["status"], str(r["rows"]), str(r["expected"]),
              str(r["fillable_bars"]), str(r["exchange_gap_bars"]), r["check"], str(r["repairs"]),
              ",".join(f"{k}:{v}" for k, v in sorted(r["sources"].items())), r["error"][:60]] for r in report]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*headers), *(fmt.format(*line) for line in lines)])


@click.command("gaps")
@click.option("--symbols", cls=MultiValueOption, help="Symbols (default: all in the ledger).")
@click.option("--intervals", cls=MultiValueOption, help="Intervals (default: all in the ledger).")
@click.option("--start", help="First day, YYYY-MM-DD.")
@click.option("--end", help="Last day, YYYY-MM-DD.")
@click.option("--all", "show_all", is_flag=True, help="List every day, not only those needing attention.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--database-url", envvar="DATABASE_URL", help="Market-data database URL.")
def gaps_command(symbols: tuple[str, ...] | None, intervals: tuple[str, ...] | None, start: str | None,
                 end: str | None, show_all: bool, as_json: bool, database_url: str | None) -> None:
    """Missing bars and their class per symbol, interval and day, from the partition ledger.

    fillable: the exchange has the bars (the repair sensor re-runs the day); exch.gap: the exchange has
    no data either (maintenance, outage): recorded, not retried.
    """
    try:
        wanted_symbols = [validate_symbol(s.upper()) for s in symbols or ()]
        wanted_intervals = [validate_interval(i) for i in intervals or ()]
        first = parse_day(start) if start else None
        last = parse_day(end) if end else None
        if first and last and last < first:
            raise InvalidInputError(f"end date {last} is before start date {first}")
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from None
    settings = settings_from_flags(database_url=database_url)
    try:
        settings.require_existing_store()
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from None
    from marketdata_assets.storage.engine import make_engine
    from marketdata_assets.storage.migrate import upgrade
    from marketdata_assets.storage.repository import MarketDataRepository

    settings.ensure_sqlite_dir()
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        report = ledger_report(MarketDataRepository(engine), wanted_symbols, wanted_intervals, first, last,
                               show_all)
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(report, indent=2))
    elif not report:
        click.echo("no gaps: every loaded day is complete" if not show_all else "the ledger is empty")
    else:
        click.echo(_table(report))
        fillable = sum(r["fillable_bars"] for r in report)
        exchange = sum(r["exchange_gap_bars"] for r in report)
        click.echo(f"\n{len(report)} day(s); {fillable} fillable bar(s), {exchange} exchange-gap bar(s)")
