"""The audit schedule: every day, the `audit` check of every table-backed dataset on recent days, plus a
slice of the whole stored history, so that each stored day is re-read at least once per cycle.

One checks-only run per tick (no asset is materialized, nothing is downloaded). It is not partitioned:
which days it audits is its scope, carried by a run tag (`marketdata/audit_scope`, shown in the run list),
and each check op turns the scope into partition keys itself: the last `recent_days` complete days of
every symbol, and the stored days (from the ledger) whose ordinal falls on today's slot of the cycle.
Every evaluation carries its partition, so the UI counts it per partition and a failure feeds that
dataset's repair sensor, which reloads exactly that day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import dagster as dg

from marketdata_assets.binance.intervals import InvalidInputError
from marketdata_assets.defs.constants import AUDIT_CHECK, REASON_AUDIT, TAG_REASON
from marketdata_assets.defs.datasets.spec import DailyDatasetSpec
from marketdata_assets.defs.partitions import DATE_DIM, SYMBOLS_PARTITIONS_NAME, partition_key
from marketdata_assets.storage.ledger import stored_days

TAG_AUDIT_SCOPE = "marketdata/audit_scope"
AUDIT_CRON = "30 2 * * *"  # after the daily refresh (00:15) and the archive's publication of yesterday


@dataclass(frozen=True)
class AuditScope:
    """Which days an audit run reads: `recent_days` up to yesterday, and history slot `slot` of `cycle_days`."""

    recent_days: int
    cycle_days: int
    slot: int

    def __post_init__(self) -> None:
        if self.recent_days < 0 or self.cycle_days < 1 or not 0 <= self.slot < self.cycle_days:
            raise InvalidInputError(f"audit scope {self.tag}: expected recent >= 0, cycle >= 1, 0 <= slot < cycle")

    @property
    def tag(self) -> str:
        return f"recent={self.recent_days};cycle={self.cycle_days};slot={self.slot}"

    @classmethod
    def for_day(cls, day: date, recent_days: int, cycle_days: int) -> AuditScope:
        return cls(recent_days, cycle_days, day.toordinal() % cycle_days)

    @classmethod
    def parse(cls, tag: str) -> AuditScope:
        try:
            parts = dict(item.split("=", 1) for item in tag.split(";"))
            return cls(int(parts["recent"]), int(parts["cycle"]), int(parts["slot"]))
        except (KeyError, ValueError):
            raise InvalidInputError(f"{TAG_AUDIT_SCOPE}={tag!r}: expected 'recent=N;cycle=N;slot=N'") from None


def first_day(partitions_def: dg.PartitionsDefinition) -> date | None:
    """The first day of a date x symbol partition space."""
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        date_def = partitions_def.get_partitions_def_for_dimension(DATE_DIM)
        if isinstance(date_def, dg.TimeWindowPartitionsDefinition):
            return date_def.start.date()
    return None


def sweep_keys(instance: dg.DagsterInstance, engine, spec: DailyDatasetSpec,
               partitions_def: dg.PartitionsDefinition, scope: AuditScope) -> list[str]:
    """Stored days of `spec` in today's slot of the cycle, for the symbols of the partition space."""
    symbols = set(instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME))
    first = first_day(partitions_def)
    return [str(partition_key(day, symbol))
            for symbol, day in stored_days(engine, spec.ledger_dataset, spec.interval)
            if symbol in symbols and (first is None or day >= first)
            and day.toordinal() % scope.cycle_days == scope.slot]


def build_audit_schedule(specs: Sequence[DailyDatasetSpec], recent_days: int,
                         cycle_days: int) -> dg.ScheduleDefinition | None:
    """The daily audit of every audited dataset (None when no dataset is audited)."""
    check_keys = [dg.AssetCheckKey(spec.key, AUDIT_CHECK) for spec in specs if spec.audited]
    if not check_keys:
        return None

    @dg.schedule(
        name="audit_stored_data",
        cron_schedule=AUDIT_CRON,
        execution_timezone="UTC",
        target=dg.AssetSelection.checks(*check_keys),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"The `audit` check of {len(check_keys)} dataset(s) at 02:30 UTC: the last {recent_days} "
                    f"day(s) of every symbol and 1/{cycle_days} of the stored history (each stored day once "
                    "every cycle). Failures go to the repair sensors.",
    )
    def audit_stored_data(context: dg.ScheduleEvaluationContext):
        tick_day = context.scheduled_execution_time.date()
        scope = AuditScope.for_day(tick_day, recent_days, cycle_days)
        return dg.RunRequest(
            run_key=f"{REASON_AUDIT}:{tick_day.isoformat()}",
            asset_selection=[],
            asset_check_keys=check_keys,
            tags={TAG_REASON: REASON_AUDIT, TAG_AUDIT_SCOPE: scope.tag},
        )

    return audit_stored_data
