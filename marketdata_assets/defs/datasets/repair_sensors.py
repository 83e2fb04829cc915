"""The repair sensors of the non-kline datasets, one per dataset group, all from `build_repair_sensor`.

Why one sensor per group: each shows its own ticks and skip reasons in the UI, and a slow ledger read
of one dataset never delays another's repairs. Targets are read off the built assets and checks, so a
dataset added to the code location only needs a line here naming its ledger dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import dagster as dg

from marketdata_assets.defs.datasets.repair import RepairTarget, build_repair_sensor, target_for
from marketdata_assets.ingest.klines import KIND_DATASETS

# the ledger (dataset, interval) an asset's partitions are recorded under
LedgerOf = Callable[[dg.AssetsDefinition], tuple[str, str]]


def price_kline_ledger(assets_def: dg.AssetsDefinition) -> tuple[str, str]:
    meta = assets_def.metadata_by_key[assets_def.key]
    return KIND_DATASETS[meta["kind"]], meta["interval"]


def plain_ledger(dataset: str) -> LedgerOf:
    return lambda _assets_def: (dataset, "")


def dataset_targets(assets: Sequence[dg.AssetsDefinition], checks: Sequence[dg.AssetChecksDefinition],
                    ledger_of: LedgerOf) -> list[RepairTarget]:
    """A repair target for each asset that has a `gaps` check."""
    out = []
    for assets_def in assets:
        target = target_for(assets_def, checks, *ledger_of(assets_def))
        if target.gap_check_key in target.check_keys:
            out.append(target)
    return out


def build_dataset_repair_sensors(
    groups: dict[str, tuple[Sequence[dg.AssetsDefinition], LedgerOf]],
    checks: Sequence[dg.AssetChecksDefinition],
    max_attempts: int,
    backoff_base_seconds: int,
) -> list[dg.SensorDefinition]:
    """`gap_repair_<group>` for each group of assets (empty groups get no sensor)."""
    sensors = []
    for group, (assets, ledger_of) in groups.items():
        targets = dataset_targets(assets, checks, ledger_of)
        if targets:
            sensors.append(build_repair_sensor(f"gap_repair_{group}", targets, max_attempts, backoff_base_seconds))
    return sensors
