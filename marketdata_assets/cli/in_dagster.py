"""The Dagster kline assets and checks run in this process with `dagster.materialize`, one range run per
symbol and interval: `marketdata download --in-dagster` (materialize) and `marketdata audit` (checks only).

With DAGSTER_HOME set, the runs land in that instance (the UI shows them: materializations, per-partition
check results, lineage, and the repair sensors act on failed checks); without it, in an ephemeral
instance. Imported only when asked for, so the plain `marketdata download` never loads Dagster.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from marketdata_assets.settings import Settings

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


@dataclass(frozen=True)
class CheckOutcome:
    """One check result of one partition, as `marketdata audit` prints it."""

    asset: str
    check: str
    partition: str
    passed: bool
    warning: bool
    description: str


def instance_is_persistent() -> bool:
    return bool(os.environ.get("DAGSTER_HOME"))


@contextmanager
def _session(settings: Settings, symbols: list[str], intervals: list[str], first: date) -> Iterator[tuple]:
    """(definitions, instance, resource) for these symbols and intervals; symbols added to the partitions."""
    import dagster as dg

    from marketdata_assets.defs import CodeLocationConfig, MarketDataResource, build_definitions

    base = CodeLocationConfig.from_env()
    config = dataclasses.replace(base, symbols=tuple(symbols), intervals=tuple(intervals),
                                 start_date=min(base.start_date, first))
    resource = MarketDataResource(
        database_url=settings.database_url, fapi_url=settings.fapi_url, archive_url=settings.archive_url,
        archive_listing_url=settings.archive_listing_url,
    )
    defs = build_definitions(config, resource)
    instance = dg.DagsterInstance.get() if instance_is_persistent() else dg.DagsterInstance.ephemeral()
    try:
        known = set(instance.get_dynamic_partitions("symbols"))
        instance.add_dynamic_partitions("symbols", [s for s in symbols if s not in known])
        yield defs, instance, resource
    finally:
        resource.close()
        instance.dispose()


def _runs(defs, instance, resource, symbols: list[str], intervals: list[str], first: date, last: date,
          reason: str, checks_only: bool) -> Iterator[tuple[str, str, Any]]:
    """One range run per (interval, symbol): (interval, symbol, ExecuteInProcessResult)."""
    import dagster as dg

    from marketdata_assets.defs.constants import TAG_REASON, kline_asset_key

    for interval in intervals:
        key = kline_asset_key(interval)
        checks = [c for c in defs.asset_checks if any(k.asset_key == key for k in c.check_keys)]
        for symbol in symbols:
            tags = {
                RANGE_START: str(dg.MultiPartitionKey({"date": first.isoformat(), "symbol": symbol})),
                RANGE_END: str(dg.MultiPartitionKey({"date": last.isoformat(), "symbol": symbol})),
                TAG_REASON: reason,
            }
            result = dg.materialize(
                [defs.get_assets_def(key), *checks], instance=instance, resources={"marketdata": resource},
                selection=dg.AssetSelection.checks_for_assets(key) if checks_only else None,
                tags=tags, raise_on_error=False,
                # the run's events are stored in the instance; the terminal shows our own lines only
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            )
            yield interval, symbol, result


def _failure(result) -> str:
    failure = next((e for e in result.all_events if e.is_failure), None)
    message = failure.message if failure is not None else "run failed"
    return (message or "run failed").strip().splitlines()[0]


def materialize_klines(settings: Settings, symbols: list[str], intervals: list[str], first: date, last: date,
                       on_run: Callable[[str, str, bool], None] | None = None) -> list[str]:
    """Materialize klines_<interval> and its checks for every symbol over [first, last]; returns errors."""
    from marketdata_assets.defs.constants import REASON_DOWNLOAD

    errors: list[str] = []
    with _session(settings, symbols, intervals, first) as (defs, instance, resource):
        for interval, symbol, result in _runs(defs, instance, resource, symbols, intervals, first, last,
                                              REASON_DOWNLOAD, checks_only=False):
            if not result.success:
                errors.append(f"klines_{interval} {symbol} {first}..{last}: {_failure(result)}")
            if on_run:
                on_run(symbol, interval, result.success)
    return errors


def audit_klines(settings: Settings, symbols: list[str], intervals: list[str], first: date,
                 last: date) -> tuple[list[CheckOutcome], list[str]]:
    """Every check of klines_<interval> (the audit of stored rows included) over [first, last] for every
    symbol, without loading anything; returns (each partition's check results, runs that failed)."""
    import dagster as dg

    from marketdata_assets.defs.constants import REASON_AUDIT

    outcomes: list[CheckOutcome] = []
    errors: list[str] = []
    with _session(settings, symbols, intervals, first) as (defs, instance, resource):
        for interval, symbol, result in _runs(defs, instance, resource, symbols, intervals, first, last,
                                              REASON_AUDIT, checks_only=True):
            if not result.success:
                errors.append(f"klines_{interval} {symbol} {first}..{last}: {_failure(result)}")
            for evaluation in result.get_asset_check_evaluations():
                outcomes.append(CheckOutcome(
                    asset=evaluation.asset_key.to_user_string(), check=evaluation.check_name,
                    partition=evaluation.partition or "", passed=evaluation.passed,
                    warning=evaluation.severity == dg.AssetCheckSeverity.WARN,
                    description=evaluation.description or ""))
    return outcomes, errors
