"""One repair sensor factory for every dataset: a failed `gaps` or `audit` check becomes a run of that partition.

Each `RepairTarget` names an asset, the ledger row its partitions are recorded in (dataset, interval) and
the checks a repair run executes (all of the asset's checks, so the run shows whether it fixed the day).
Bounded: at most `max_attempts` per failure episode (the ledger's `repair_attempts`, which the checks
reset when those checks pass), exponential backoff between attempts; run keys make a tick idempotent; run
tags say why the run exists. Checks that pass with a warning (exchange gaps) are never retried.

Every dataset spec names its sensor (`gap_repair` for trade klines, `gap_repair_<group>` for price
klines, funding rates, aggregate trades, metrics, book depth); `build_repair_sensors` builds them all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from marketdata_assets.defs.constants import (
    REASON_REPAIR,
    REPAIR_CHECKS,
    TAG_GAPS,
    TAG_REASON,
    TAG_REPAIR_ATTEMPT,
)
from marketdata_assets.defs.datasets.spec import DailyDatasetSpec
from marketdata_assets.defs.partitions import SYMBOLS_PARTITIONS_NAME, parse_partition_key
from marketdata_assets.defs.resources import MarketDataResource
from marketdata_assets.storage.ledger import CheckStatus, repair_state

MAX_RUNS_PER_TICK = 50


@dataclass(frozen=True)
class RepairTarget:
    """An asset whose partitions with a failed `gaps` or `audit` check the sensor re-runs, and where its
    ledger rows live."""

    asset_key: dg.AssetKey
    dataset: str
    interval: str = ""
    check_keys: tuple[dg.AssetCheckKey, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.asset_key.path[-1]

    @property
    def repair_check_keys(self) -> list[dg.AssetCheckKey]:
        """Its checks whose failure a reload can fix (REPAIR_CHECKS)."""
        return [key for key in self.check_keys if key.name in REPAIR_CHECKS]


def repair_target(spec: DailyDatasetSpec) -> RepairTarget:
    """The target of one dataset: its asset, its ledger row, all its checks, its tags."""
    return RepairTarget(spec.key, spec.ledger_dataset, spec.interval, tuple(spec.check_keys), dict(spec.tags))


def build_repair_sensors(specs: Sequence[DailyDatasetSpec], max_attempts: int,
                         backoff_base_seconds: int) -> list[dg.SensorDefinition]:
    """One sensor per `repair_sensor` name of the specs that have a repair check (each sensor shows its own
    ticks and skip reasons in the UI, and a slow ledger read of one never delays another's repairs)."""
    groups: dict[str, list[RepairTarget]] = {}
    for spec in specs:
        target = repair_target(spec)
        if spec.repair_sensor and target.repair_check_keys:
            groups.setdefault(spec.repair_sensor, []).append(target)
    return [build_repair_sensor(name, targets, max_attempts, backoff_base_seconds) for name, targets in groups.items()]


def repair_run_request(target: RepairTarget, pk: str, run_key: str, tags: Mapping[str, str]) -> dg.RunRequest:
    """A run of one partition of the target's asset with all its checks."""
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=[target.asset_key],
        asset_check_keys=list(target.check_keys) or None,
        partition_key=pk,
        tags={**target.tags, **tags},
    )


def backoff_seconds(base: int, attempt: int) -> float:
    """Wait before attempt `attempt + 1`: base, 4 x base, 16 x base, ..."""
    return float(base) * 4 ** max(attempt - 1, 0)


def build_repair_sensor(
    name: str,
    targets: Sequence[RepairTarget],
    max_attempts: int = 3,
    backoff_base_seconds: int = 600,
    interval_seconds: int = 60,
) -> dg.SensorDefinition:
    """A sensor re-running the partitions of `targets` whose `gaps` or `audit` check failed (see the module
    docstring)."""
    by_name = {t.name: t for t in targets}
    repair_keys = [key for t in targets for key in t.repair_check_keys]

    @dg.sensor(
        name=name,
        minimum_interval_seconds=interval_seconds,
        target=dg.AssetSelection.assets(*[t.asset_key for t in targets]),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Re-runs partitions of {', '.join(sorted(by_name))} whose gaps or audit check failed: at most "
                    f"{max_attempts} attempts per failure, backoff from {backoff_base_seconds}s, tagged "
                    f"{TAG_REASON}={REASON_REPAIR}.",
    )
    def _repair(context: dg.SensorEvaluationContext, marketdata: MarketDataResource):
        state = json.loads(context.cursor) if context.cursor else {}
        after: int | None = state.get("after")
        # "klines_1h|2024-01-01|BTCUSDT" -> {"not_before": epoch s, "attempts": n}
        pending: dict[str, dict] = state.get("pending", {})
        infos = context.instance.event_log_storage.get_asset_check_partition_info(repair_keys, after_storage_id=after)
        # a partition is pending while any of its repair checks' latest result failed
        failing: dict[str, set[str]] = state.get("failing", {})
        for info in infos:
            if info.partition_key is None:
                continue
            after = max(after or 0, info.latest_check_event_storage_id or 0)
            entry = f"{info.check_key.asset_key.path[-1]}|{info.partition_key}"
            checks = set(failing.get(entry, ()))
            if info.latest_execution_status == AssetCheckExecutionRecordStatus.FAILED:
                checks.add(info.check_key.name)
                pending.setdefault(entry, {"not_before": 0.0, "attempts": 0})
            elif info.latest_execution_status == AssetCheckExecutionRecordStatus.SUCCEEDED:
                checks.discard(info.check_key.name)
                if not checks:
                    pending.pop(entry, None)
            if checks:
                failing[entry] = sorted(checks)
            else:
                failing.pop(entry, None)

        now = time.time()
        known_symbols = set(context.instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME))
        runs: list[dg.RunRequest] = []
        runtime = marketdata.runtime() if pending else None
        for entry, item in sorted(pending.items()):
            if len(runs) >= MAX_RUNS_PER_TICK or now < item["not_before"]:
                continue
            asset_name, pk = entry.split("|", 1)
            target = by_name.get(asset_name)
            day, symbol = parse_partition_key(pk)
            if target is None or symbol not in known_symbols:
                pending.pop(entry)
                continue
            recorded_attempts, check_status = repair_state(runtime.engine, target.dataset, symbol, target.interval, day)
            if check_status is not None and check_status != CheckStatus.FAILED:
                # a warning (an exchange gap: the exchange has nothing more) is shown, never retried
                pending.pop(entry)
                continue
            attempts = max(item["attempts"], recorded_attempts)
            if attempts >= max_attempts:
                context.log.warning(f"{asset_name} {pk}: {', '.join(failing.get(entry, ['checks']))} still failing "
                                    f"after {attempts} repair attempt(s); giving up (see `marketdata gaps`)")
                pending.pop(entry)
                failing.pop(entry, None)
                continue
            recorded = runtime.repo.record_repair_attempt(target.dataset, symbol, target.interval, day)
            attempt = max(int(recorded or 0), attempts + 1)
            item.update(attempts=attempt, not_before=now + backoff_seconds(backoff_base_seconds, attempt))
            runs.append(repair_run_request(
                target, pk, run_key=f"{REASON_REPAIR}:{asset_name}:{pk}:{attempt}",
                tags={TAG_REASON: REASON_REPAIR, TAG_REPAIR_ATTEMPT: str(attempt),
                      TAG_GAPS: f"{asset_name}:{'+'.join(failing.get(entry, ['checks']))} failed for {pk}"},
            ))
        failing = {entry: checks for entry, checks in failing.items() if entry in pending}
        cursor = json.dumps({"after": after, "pending": pending, "failing": failing}, sort_keys=True)
        if not runs:
            return dg.SensorResult(skip_reason=f"nothing to repair ({len(pending)} waiting for backoff or a run)",
                                   cursor=cursor)
        return dg.SensorResult(run_requests=runs, cursor=cursor)

    return _repair
