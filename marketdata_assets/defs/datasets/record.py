"""A load outside Dagster (`marketdata download`) recorded in the Dagster instance, so the UI, the checks'
partition views, the quality score and the sensors see what the store holds.

Each day the load stored becomes its partition's materialization (a runless event, tagged
marketdata/reason=download) with the same per-day metadata a Dagster run attaches (factory.day_figures);
a day skipped as unchanged is recorded only when its partition has no materialization yet (e.g. loaded
before DAGSTER_HOME was set). The symbol is added to the `symbols` partitions, where it stays until the
exchange delists it (defs/exchange/sensors.py). A failed day is not recorded: nothing was stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import dagster as dg

from marketdata_assets.defs.config import CodeLocationConfig
from marketdata_assets.defs.constants import REASON_DOWNLOAD, TAG_REASON
from marketdata_assets.defs.datasets.factory import day_figures
from marketdata_assets.defs.datasets.spec import DailyDatasetSpec
from marketdata_assets.defs.partitions import SYMBOLS_PARTITIONS_NAME, partition_key
from marketdata_assets.defs.registry import dataset_specs
from marketdata_assets.ingest.contract import DayResult
from marketdata_assets.storage.ledger import DayStatus


@dataclass
class Recorded:
    """What was written to the instance, per asset, and what could not be (with why)."""

    materialized: dict[str, int] = field(default_factory=dict)
    not_recorded: list[str] = field(default_factory=list)

    def line(self, home: str) -> str:
        done = ", ".join(f"{n} partition(s) of {asset}" for asset, n in sorted(self.materialized.items()))
        text = f"recorded in Dagster (DAGSTER_HOME={home}): {done or 'nothing new'}"
        return text + (f"; not recorded: {'; '.join(self.not_recorded)}" if self.not_recorded else "")


def _spec_for(specs: Iterable[DailyDatasetSpec], result: DayResult) -> DailyDatasetSpec | None:
    return next((s for s in specs if s.ledger_dataset == result.dataset and s.interval == result.interval), None)


def record_loads(instance: dg.DagsterInstance, runtime, results: list[DayResult],
                 config: CodeLocationConfig | None = None) -> Recorded:
    """Record `results` of one load in `instance` (see the module docstring)."""
    config = config or CodeLocationConfig.from_env()
    specs = dataset_specs(config)
    today = datetime.now(UTC).date()
    out = Recorded()
    by_spec: dict[str, tuple[DailyDatasetSpec, list[DayResult]]] = {}
    unserved: set[str] = set()
    early = 0
    for result in results:
        if result.status == DayStatus.FAILED:
            continue
        spec = _spec_for(specs, result)
        if spec is None:
            unserved.add(f"{result.dataset} {result.interval}")
        elif not config.start_date <= result.day < today:
            early += 1
        else:
            by_spec.setdefault(spec.name, (spec, []))[1].append(result)
    if unserved:
        out.not_recorded.append(f"{', '.join(sorted(unserved))} not served by the code location "
                                "(MARKETDATA_INTERVALS)")
    if early:
        out.not_recorded.append(f"{early} day(s) outside its partitions (from MARKETDATA_START_DATE="
                                f"{config.start_date} to yesterday)")

    symbols = sorted({r.symbol for _, rs in by_spec.values() for r in rs})
    known = set(instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME))
    if new := [s for s in symbols if s not in known]:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, new)

    for spec, spec_results in by_spec.values():
        materialized = instance.get_materialized_partitions(spec.key)
        # a day skipped as unchanged carries its ledger row's figures already (the loader built it from
        # that row, whose status is complete): recorded only when its partition has no materialization
        keep = [r if r.status != DayStatus.UNCHANGED else replace(r, status=DayStatus.COMPLETE)
                for r in spec_results if r.status != DayStatus.UNCHANGED
                or str(partition_key(r.day, r.symbol)) not in materialized]
        figures = day_figures(spec, runtime, keep)
        for result in keep:
            instance.report_runless_asset_event(dg.AssetMaterialization(
                asset_key=spec.key, partition=str(partition_key(result.day, result.symbol)),
                metadata=figures(result), tags={TAG_REASON: REASON_DOWNLOAD}))
        if keep:
            out.materialized[spec.name] = len(keep)
    return out

