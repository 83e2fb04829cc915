"""The declarative description of a daily dataset: what `defs/datasets/factory.py` turns into Dagster defs.

One `DailyDatasetSpec` per (exchange, dataset[, kind][, interval]): its asset key, table, ledger row, loader,
checks, metadata, group, pool and backfill policy. The factory builds its asset, its checks, its repair
target and its quality input from the spec alone, so adding a dataset is one spec plus its loader
(and a line in `defs/registry.py`). The exchange is part of a dataset's identity: a second exchange's
datasets are further specs with their own `exchange`, not a fork of this code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg

from marketdata_assets.defs.constants import AUDIT_CHECK, AUDIT_DESCRIPTION, BINANCE_POOL, EXCHANGE_INFO_KEY
from marketdata_assets.ingest.contract import DailyLoader
from marketdata_assets.storage.day_content import content_of
from marketdata_assets.validation.kline_checks import DayCheck

BINANCE = "binance"


#: verdicts of the selected checks for one symbol's days: check name -> day -> verdict
Verdicts = Mapping[str, Mapping[date, DayCheck]]


@dataclass(frozen=True)
class CheckFamily:
    """The per-partition checks of a dataset: their names and descriptions, and one evaluator that
    computes every selected check for one symbol's days from one read of the store."""

    descriptions: Mapping[str, str]
    # (runtime, symbol, days, selected check names) -> verdicts
    evaluate: Callable[[Any, str, list[date], set[str]], Verdicts]
    # checks whose failure is a warning (shown, never repaired)
    warn_only: frozenset[str] = frozenset()


@dataclass(frozen=True)
class DailyDatasetSpec:
    """A dataset partitioned by UTC day x symbol (see the module docstring)."""

    name: str  # the asset key: "klines_1m", "funding_rates", ...
    ledger_dataset: str  # partition_ledger.dataset
    table: str
    group: str
    description: str
    # a run's loader, from the run's runtime (ingest.runtime.Runtime)
    loader: Callable[[Any], DailyLoader]
    checks: CheckFamily | None  # None: no per-partition checks
    day_metadata: Callable[[Any], dict]
    # the totals of a range run, for its log: (results, loader) -> metadata
    summary: Callable[[list[Any], DailyLoader], dict]
    days_per_run: int | None  # None: a backfill is one run
    interval: str = ""  # the ledger's interval ("" for datasets without one)
    exchange: str = BINANCE
    pool: str | None = BINANCE_POOL
    deps: tuple[dg.AssetKey, ...] = (EXCHANGE_INFO_KEY,)
    kinds: frozenset[str] = frozenset({"python", "binance"})
    tags: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # the repair sensor that re-runs its failed `gaps` partitions (None: not repaired)
    repair_sensor: str | None = None
    # more figures per day that need the store (e.g. a preview): (runtime, results) -> {(symbol, day): metadata}
    day_extras: Callable[[Any, list[Any]], dict[tuple[str, date], dict]] | None = None
    # scored by data_quality
    scored: bool = True

    @property
    def key(self) -> dg.AssetKey:
        return dg.AssetKey(self.name)

    @property
    def audited(self) -> bool:
        """Its stored days are audited: a dataset with checks whose ledger dataset has a table (day_content)."""
        return self.checks is not None and content_of(self.ledger_dataset) is not None

    @property
    def check_descriptions(self) -> dict[str, str]:
        """Every check of the dataset: its family's, then the audit of stored days when it has one."""
        if self.checks is None:
            return {}
        return {**self.checks.descriptions, **({AUDIT_CHECK: AUDIT_DESCRIPTION} if self.audited else {})}

    @property
    def check_keys(self) -> list[dg.AssetCheckKey]:
        return [dg.AssetCheckKey(self.key, name) for name in self.check_descriptions]

    @property
    def ledger(self) -> tuple[str, str]:
        """(dataset, interval) of its partition_ledger rows: what data_quality scores."""
        return self.ledger_dataset, self.interval
