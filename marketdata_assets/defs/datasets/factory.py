"""The one factory of daily datasets: a `DailyDatasetSpec` in, its asset and its checks out.

Every dataset runs the same way. The asset: the run's partitions grouped by symbol (one key or a range:
BackfillPolicy.multi_run makes a symbol-year one run, not 365), one `load(symbol, days)` per symbol, bad
input failing the run naming the partitions, a failure naming the days that failed, and each partition's
own figures on its own materialization, in range runs too (metadata added per partition). The checks: one
op per dataset that evaluates every selected check for each symbol's days from one read of the store, yields evaluations
carrying their partition (so range runs are attributed per day in the UI), and writes each day's worst
verdict to the ledger.
"""


from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,  # not exported by dagster; see latest_materializations
)

from marketdata_assets.binance.intervals import InvalidInputError
from marketdata_assets.defs.constants import AUDIT_CHECK, REPAIR_CHECKS
from marketdata_assets.defs.datasets.audit import TAG_AUDIT_SCOPE, AuditScope, first_day, sweep_keys
from marketdata_assets.defs.datasets.spec import DailyDatasetSpec, Verdicts
from marketdata_assets.defs.partitions import SYMBOLS_PARTITIONS_NAME, days_by_symbol, partition_key
from marketdata_assets.defs.resources import MarketDataResource
from marketdata_assets.storage.ledger import CheckStatus, DayStatus, record_check_status
from marketdata_assets.validation.audit import audit_days

SHOWN_KEYS = 5


@dataclass(frozen=True)
class DatasetDefs:
    """What the factory built for one spec."""

    spec: DailyDatasetSpec
    asset: dg.AssetsDefinition
    checks: dg.AssetChecksDefinition | None


def build_dataset(spec: DailyDatasetSpec, partitions_def: dg.PartitionsDefinition, store: str | None = None
                  ) -> DatasetDefs:
    """`store`: the kind of the configured market-data store, shown beside the spec's own kinds."""
    checks = build_checks(spec, partitions_def) if spec.checks is not None else None
    return DatasetDefs(spec, build_asset(spec, partitions_def, store), checks)


def _shown(keys: Sequence[str]) -> str:
    more = len(keys) - SHOWN_KEYS
    return ", ".join(keys[:SHOWN_KEYS]) + (f" and {more} more" if more > 0 else "")


def run_partitions(name: str, keys: Sequence[str]) -> dict[str, list[date]]:
    """Days per symbol of a run; a malformed key or a future day fails the run naming the partitions."""
    try:
        grouped = days_by_symbol(keys)
    except InvalidInputError as exc:
        raise dg.Failure(description=f"{name}: {exc}") from None
    today = datetime.now(UTC).date()
    future = [str(partition_key(d, s)) for s, days in grouped.items() for d in days if d > today]
    if future:
        raise dg.Failure(description=f"{name} partition(s) {_shown(future)}: the day has not begun yet (future date)")
    return grouped


def build_asset(spec: DailyDatasetSpec, partitions_def: dg.PartitionsDefinition,
                store: str | None = None) -> dg.AssetsDefinition:
    policy = (dg.BackfillPolicy.single_run() if spec.days_per_run is None
              else dg.BackfillPolicy.multi_run(max_partitions_per_run=spec.days_per_run))

    kinds = set(spec.kinds) | ({store} if store else set())

    @dg.asset(key=spec.key, partitions_def=partitions_def, backfill_policy=policy, pool=spec.pool,
              deps=list(spec.deps), group_name=spec.group, kinds=kinds, tags=dict(spec.tags) or None,
              metadata={"table": spec.table, **spec.metadata}, description=spec.description)
    def _daily(context: dg.AssetExecutionContext, marketdata: MarketDataResource) -> dg.MaterializeResult:
        return materialize(context, marketdata, spec)

    return _daily


def materialize(context: dg.AssetExecutionContext, marketdata: MarketDataResource,
                spec: DailyDatasetSpec) -> dg.MaterializeResult:
    """Load the run's partitions (see the module docstring)."""
    grouped = run_partitions(spec.name, context.partition_keys)
    runtime = marketdata.runtime()
    loader = spec.loader(runtime)
    results: list = []
    for symbol, days in grouped.items():
        try:
            loaded = list(loader.load(symbol, days))
        except InvalidInputError as exc:
            keys = [str(partition_key(d, symbol)) for d in days]
            raise dg.Failure(description=f"{spec.name} partition(s) {_shown(keys)}: {exc}") from None
        context.log.info(f"{spec.name} {symbol}: {len(loaded)} day(s) loaded")
        results += loaded

    figures = day_figures(spec, runtime, results)
    failed = [r for r in results if r.status == DayStatus.FAILED]
    if failed:
        # the step fails, so no partition is materialized: each day's figures go on an observation of it
        for result in results:
            context.log_event(dg.AssetObservation(
                asset_key=spec.key, partition=str(partition_key(result.day, result.symbol)), metadata=figures(result)))
        causes = "; ".join(f"{partition_key(r.day, r.symbol)}: {r.error}" for r in failed[:10])
        raise dg.Failure(
            description=f"{spec.name}: {len(failed)} of {len(results)} day(s) failed and were not stored: {causes}",
            metadata={"failed_partitions": [str(partition_key(r.day, r.symbol)) for r in failed]},
        )
    if len(results) == 1:
        return dg.MaterializeResult(metadata=figures(results[0]))
    # A range run: Dagster writes one materialization per partition, and metadata added for a partition is
    # that partition's own, so each day's materialization carries its own figures (the UI's partition view,
    # the asset overview's row count, the Plots tab). The run's totals go to its log.
    for result in results:
        context.add_asset_metadata(figures(result), partition_key=str(partition_key(result.day, result.symbol)))
    context.log.info(f"{spec.name} range summary: {describe(spec.summary(results, loader))}")
    return dg.MaterializeResult()


def day_figures(spec: DailyDatasetSpec, runtime, results: list) -> Callable[[Any], dict]:
    """Each loaded day's own partition metadata (the spec's figures and its extras, e.g. a preview): what a
    Dagster run attaches to the day's materialization and what a CLI load records for it (record.py)."""
    extras = spec.day_extras(runtime, results) if spec.day_extras is not None and results else {}
    return lambda result: {**spec.day_metadata(result), **extras.get((result.symbol, result.day), {})}


def describe(meta: dict) -> str:
    """Metadata as one log line (values as the UI would show them)."""
    return "; ".join(f"{key}={getattr(value, 'value', value)}" for key, value in meta.items())


# A checks run without partitions ("Execute all" on the Checks tab) checks this many recent days of every symbol.
UNPARTITIONED_RECENT_DAYS = 7


def build_checks(spec: DailyDatasetSpec, partitions_def: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    family = spec.checks
    assert family is not None, f"{spec.name} has no checks"
    specs = [dg.AssetCheckSpec(name, asset=spec.key, description=text, partitions_def=partitions_def)
             for name, text in spec.check_descriptions.items()]

    @dg.multi_asset_check(specs=specs, can_subset=True, name=f"{spec.name}_checks")
    def _checks(context: dg.AssetCheckExecutionContext, marketdata: MarketDataResource) -> Iterator:
        selected_keys = sorted(context.selected_asset_check_keys, key=lambda k: k.name)
        selected = {k.name for k in selected_keys}
        op_context = context.op_execution_context
        runtime = marketdata.runtime()
        if op_context.has_partition_key or op_context.has_partition_key_range:
            keys = list(context.partition_keys)
        elif TAG_AUDIT_SCOPE in context.run.tags:
            keys = audit_scope_keys(context, runtime, spec, partitions_def)
        else:
            keys = recent_partition_keys(context.instance, partitions_def, UNPARTITIONED_RECENT_DAYS)
            context.log.info(f"{spec.name} checks: no partition selected, checking the last "
                             f"{UNPARTITIONED_RECENT_DAYS} day(s) of every symbol ({len(keys)} partition(s))")
        grouped = run_partitions(f"{spec.name} checks", keys)
        some_checks = selected != set(spec.check_descriptions)
        targets = latest_materializations(context.instance, spec.key, keys)
        failed = 0
        for symbol, days in grouped.items():
            verdicts = dict(family.evaluate(runtime, symbol, days, selected - {AUDIT_CHECK})
                            if selected - {AUDIT_CHECK} else {})
            if AUDIT_CHECK in selected:
                # a day this run loaded: its digest was read from the table in the load's transaction
                fresh = [d for d in days if (t := targets.get(str(partition_key(d, symbol)))) is not None
                         and t.run_id == context.run.run_id]
                verdicts[AUDIT_CHECK] = audit_days(runtime.engine, spec.ledger_dataset, symbol, spec.interval, days,
                                                   loaded_now=fresh)
            evals, statuses, repaired = evaluations(spec, symbol, days, verdicts, targets)
            yield from evals
            failed += sum(status == CheckStatus.FAILED for status in statuses.values())
            record_check_status(runtime.engine, spec.ledger_dataset, symbol, spec.interval, statuses, repaired,
                                some_checks=some_checks)
        # each check's output, once: the evaluations above carry the results (no "did not yield" lines)
        for key in selected_keys:
            yield dg.Output(None, output_name=op_context.assets_def.get_output_name_for_asset_check_key(key))
        context.log.info(f"{spec.name}: checked {len(keys)} partition(s), {failed} failed")

    return _checks


def audit_scope_keys(context: dg.AssetCheckExecutionContext, runtime, spec: DailyDatasetSpec,
                     partitions_def: dg.PartitionsDefinition) -> list[str]:
    """The partitions of an audit run (defs/datasets/audit.py): recent days plus today's history slot."""
    try:
        scope = AuditScope.parse(context.run.tags[TAG_AUDIT_SCOPE])
    except InvalidInputError as exc:
        raise dg.Failure(description=f"{spec.name} checks: {exc}") from None
    recent = recent_partition_keys(context.instance, partitions_def, scope.recent_days)
    swept = sweep_keys(context.instance, runtime.engine, spec, partitions_def, scope)
    keys = list(dict.fromkeys([*recent, *swept]))
    context.log.info(f"{spec.name} audit ({scope.tag}): {len(recent)} recent partition(s), {len(swept)} from the "
                     f"history sweep (slot {scope.slot} of {scope.cycle_days})")
    return keys


def recent_partition_keys(instance: dg.DagsterInstance, partitions_def: dg.PartitionsDefinition,
                          days: int) -> list[str]:
    """The last `days` complete days of every symbol (within the partitions' first day)."""
    symbols = instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME)
    first = first_day(partitions_def)
    today = datetime.now(UTC).date()
    wanted = [today - timedelta(days=i) for i in range(days, 0, -1)]
    return [str(partition_key(day, symbol)) for symbol in sorted(symbols) for day in wanted
            if first is None or day >= first]


def latest_materializations(instance: dg.DagsterInstance, key: dg.AssetKey,
                            partitions: Sequence[str]) -> dict[str, AssetCheckEvaluationTargetMaterializationData]:
    """Each partition's latest materialization, which its check results target: the UI counts a check
    partition as passed or failed only while its result targets the partition's latest materialization."""
    wanted, out = set(partitions), {}
    cursor = None
    while wanted - set(out):
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=sorted(wanted - set(out))),
            limit=1000, cursor=cursor)
        for record in page.records:  # newest first
            pk = record.asset_materialization.partition
            if pk in wanted and pk not in out:
                out[pk] = AssetCheckEvaluationTargetMaterializationData(
                    storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp)
        if not page.has_more:
            break
        cursor = page.cursor
    return out


def evaluations(spec: DailyDatasetSpec, symbol: str, days: Sequence[date], verdicts: Verdicts,
                targets: Mapping[str, AssetCheckEvaluationTargetMaterializationData] | None = None,
                ) -> tuple[list[dg.AssetCheckEvaluation], dict[date, CheckStatus], set[date]]:
    """(evaluations, worst status per day, days whose repair checks (gaps, audit) ran and none failed) of one
    symbol's verdicts.

    A warning (an exchange gap, a price jump) is a failed evaluation of WARN severity: that is what the UI
    shows as a warning (a passed one is plain green); an error fails with ERROR severity."""
    out: list[dg.AssetCheckEvaluation] = []
    statuses: dict[date, CheckStatus] = {}
    repaired: set[date] = set()
    family = spec.checks
    assert family is not None
    names = [name for name in spec.check_descriptions if name in verdicts]
    targets = targets or {}
    for day in days:
        pk = str(partition_key(day, symbol))
        worst = CheckStatus.PASSED
        repair_checks = []
        for name in names:
            verdict = verdicts[name][day]
            warn = name in family.warn_only or verdict.status == CheckStatus.WARNING
            out.append(dg.AssetCheckEvaluation(
                asset_key=spec.key, check_name=name, passed=verdict.status == CheckStatus.PASSED,
                metadata={"status": str(verdict.status), **verdict.metadata},
                severity=dg.AssetCheckSeverity.WARN if warn else dg.AssetCheckSeverity.ERROR,
                description=f"{pk}: {verdict.description}", partition=pk,
                target_materialization_data=targets.get(pk),
            ))
            if verdict.status == CheckStatus.FAILED and not warn:
                worst = CheckStatus.FAILED
            elif verdict.status != CheckStatus.PASSED and worst == CheckStatus.PASSED:
                worst = CheckStatus.WARNING
            if name in REPAIR_CHECKS:
                repair_checks.append(verdict.status != CheckStatus.FAILED)
        statuses[day] = worst
        if repair_checks and all(repair_checks):
            repaired.add(day)
    return out, statuses, repaired
