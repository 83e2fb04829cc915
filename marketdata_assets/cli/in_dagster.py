"""The code location's kline jobs run in this process, one range run per symbol and interval: `marketdata
download --in-dagster` (klines_<interval>_job: load and check) and `marketdata audit`
(klines_<interval>_checks_job: checks only).

The runs execute the code location itself (marketdata_assets.definitions, configured from the environment
as the webserver's is, the store and URLs of this command exported to it), so they belong to its named
jobs: the UI links each run to its job and can re-execute it, and no resource configuration (no database
URL) is written into the run. With DAGSTER_HOME set they land in that instance (the UI shows their
materializations and per-partition check results, the repair sensors act on failed checks); `download
--in-dagster` refuses to run without it, `audit` then checks in a throwaway instance. Imported only when
asked for, so the plain `marketdata download` never loads Dagster.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from marketdata_assets.binance.intervals import InvalidInputError
from marketdata_assets.settings import Settings

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
CODE_LOCATION_MODULE = "marketdata_assets.definitions"
LOCATION_NAME = "marketdata"  # workspace.yaml's location_name: the UI finds the runs' jobs under it
SINGLE_REPOSITORY_NAME = "__repository__"  # Dagster's name for the one repository of a Definitions
# the settings a run of the code location reads from the environment (MarketDataResource's defaults)
EXPORTED = {"DATABASE_URL": "database_url", "BINANCE_FAPI_URL": "fapi_url", "BINANCE_ARCHIVE_URL": "archive_url",
            "BINANCE_ARCHIVE_LISTING_URL": "archive_listing_url"}


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


def _served(intervals: list[str], first: date) -> None:
    """The code location serves these intervals and this first day, or the input is refused (exit 2)."""
    from marketdata_assets.defs.config import CodeLocationConfig

    config = CodeLocationConfig.from_env()
    missing = [i for i in intervals if i not in config.intervals]
    if missing:
        raise InvalidInputError(f"--intervals {' '.join(missing)}: not served by the code location "
                                f"(MARKETDATA_INTERVALS={','.join(config.intervals)})")
    if first < config.start_date:
        raise InvalidInputError(f"--start {first}: before the code location's first partition "
                                f"(MARKETDATA_START_DATE={config.start_date})")


@contextmanager
def _session(settings: Settings, symbols: list[str], intervals: list[str], first: date) -> Iterator[tuple]:
    """(the code location as a reconstructable repository, instance); the symbols added to the partitions."""
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    for name, attribute in EXPORTED.items():
        value = getattr(settings, attribute, None)
        if value:
            os.environ[name] = str(value)
    _served(intervals, first)
    repository = ReconstructableRepository.for_module(CODE_LOCATION_MODULE, "defs", os.getcwd())
    instance = dg.DagsterInstance.get() if instance_is_persistent() else dg.DagsterInstance.ephemeral()
    try:
        known = set(instance.get_dynamic_partitions("symbols"))
        instance.add_dynamic_partitions("symbols", [s for s in symbols if s not in known])
        yield repository, instance
    finally:
        instance.dispose()


def _runs(repository, instance, symbols: list[str], intervals: list[str], first: date, last: date,
          reason: str, checks_only: bool) -> Iterator[tuple[str, str, Any]]:
    """One range run per (interval, symbol) of the interval's named job: (interval, symbol, result)."""
    import dagster as dg

    from marketdata_assets.defs.constants import TAG_REASON
    from marketdata_assets.defs.klines.jobs import kline_job_name

    for interval in intervals:
        job = repository.get_reconstructable_job(kline_job_name(interval, checks_only))
        for symbol in symbols:
            tags = {
                RANGE_START: str(dg.MultiPartitionKey({"date": first.isoformat(), "symbol": symbol})),
                RANGE_END: str(dg.MultiPartitionKey({"date": last.isoformat(), "symbol": symbol})),
                TAG_REASON: reason,
            }
            yield interval, symbol, _execute(job, instance, tags)


def _execute(job, instance, tags: dict[str, str]):
    """Run `job` in this process as a run of the code location `marketdata` (its origin recorded, as for a
    run the UI launches, so that the UI can re-execute it); Dagster's `execute_job` records none."""
    from dagster._core.execution.api import _job_with_repository_load_data, execute_run
    from dagster._core.remote_origin import (
        ManagedGrpcPythonEnvCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    job, load_data = _job_with_repository_load_data(job)
    definition = job.get_definition()
    location = ManagedGrpcPythonEnvCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name=CODE_LOCATION_MODULE,
                             working_directory=os.getcwd()),
        location_name=LOCATION_NAME)
    origin = RemoteJobOrigin(RemoteRepositoryOrigin(location, SINGLE_REPOSITORY_NAME), definition.name)
    run = instance.create_run_for_job(
        job_def=definition, tags=tags, job_code_origin=job.get_python_origin(), repository_load_data=load_data,
        remote_job_origin=origin,
        # the run's events are stored in the instance; the terminal shows our own lines only
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    return execute_run(job, run, instance)


def _failure(result) -> str:
    failure = next((e for e in result.all_events if e.is_failure), None)
    message = failure.message if failure is not None else "run failed"
    return (message or "run failed").strip().splitlines()[0]


def materialize_klines(settings: Settings, symbols: list[str], intervals: list[str], first: date, last: date,
                       on_run: Callable[[str, str, bool], None] | None = None) -> list[str]:
    """Materialize klines_<interval> and its checks for every symbol over [first, last]; returns errors."""
    from marketdata_assets.defs.constants import REASON_DOWNLOAD

    errors: list[str] = []
    with _session(settings, symbols, intervals, first) as (repository, instance):
        for interval, symbol, result in _runs(repository, instance, symbols, intervals, first, last,
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
    with _session(settings, symbols, intervals, first) as (repository, instance):
        for interval, symbol, result in _runs(repository, instance, symbols, intervals, first, last,
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
