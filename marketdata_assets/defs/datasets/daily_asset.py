"""One asset factory for the daily datasets that are not klines (agg trades, funding, market stats, quality).

They all run the same way: the run's partitions grouped by symbol, one load per symbol, a load error
turned into a failure naming the partitions, one observation per day in a range run (so each partition
holds its own figures), a failure naming the failed days, and metadata for the day or a summary of the
range. Only the loader and the metadata are the dataset's own; klines keep theirs (ledger and written
counts of their own).
"""

import warnings
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import date
from typing import Any, Protocol, TypeVar

import dagster as dg

from marketdata_assets.binance.intervals import InvalidInputError
from marketdata_assets.defs.constants import BINANCE_POOL, EXCHANGE_INFO_KEY
from marketdata_assets.defs.datasets.common import run_partitions
from marketdata_assets.defs.partitions import partition_key
from marketdata_assets.defs.resources import MarketDataResource


class DayResult(Protocol):
    """What the factory needs of a loader's per-day result: the partition it belongs to."""

    @property
    def symbol(self) -> str: ...

    @property
    def day(self) -> date: ...


R = TypeVar("R", bound=DayResult)
#: Given the run's runtime, a function loading (symbol, days) into one result per day.
LoaderFactory = Callable[[Any], Callable[[str, list[date]], Sequence[R]]]


def build_daily_dataset_asset(
    key: dg.AssetKey,
    *,
    partitions_def: dg.PartitionsDefinition,
    group_name: str,
    description: str,
    loader: LoaderFactory[R],
    day_metadata: Callable[[R], dict],
    summary: Callable[[list[R]], dict],
    days_per_run: int | None,
    metadata: Mapping[str, str] | None = None,
    deps: Sequence[dg.AssetKey] = (EXCHANGE_INFO_KEY,),
    pool: str | None = BINANCE_POOL,
    kinds: Collection[str] = ("python", "binance"),
    errors: tuple[type[Exception], ...] = (InvalidInputError,),
    describe_error: Callable[[Exception], str] = str,
    failure_cause: Callable[[R], str | None] | None = None,
    failed_partitions_metadata: bool = False,
) -> dg.AssetsDefinition:
    """The asset `key` over `partitions_def`, `days_per_run` days per backfill run (None: one run).

    `errors` raised by the loader fail the run naming the symbol's partitions (`describe_error` words
    the error); `failure_cause` gives the error of a day that failed (None: it did not), and any such
    day fails the run after its observation is logged (`failed_partitions_metadata`: the failure lists
    them as metadata too).
    """
    name = key.to_user_string()
    policy = (dg.BackfillPolicy.single_run() if days_per_run is None
              else dg.BackfillPolicy.multi_run(max_partitions_per_run=days_per_run))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)

        @dg.asset(key=key, partitions_def=partitions_def, backfill_policy=policy, pool=pool, deps=list(deps),
                  group_name=group_name, kinds=set(kinds), metadata=dict(metadata) if metadata else None,
                  description=description)
        def _daily(context: dg.AssetExecutionContext, marketdata: MarketDataResource) -> dg.MaterializeResult:
            grouped = run_partitions(name, context.partition_keys)
            load = loader(marketdata.runtime())
            results: list[R] = []
            for symbol, days in grouped.items():
                try:
                    results += load(symbol, days)
                except errors as exc:
                    shown = ", ".join(str(partition_key(d, symbol)) for d in days[:5])
                    raise dg.Failure(description=f"{name} partition(s) {shown}: {describe_error(exc)}") from None
            if len(results) > 1:
                for result in results:
                    context.log_event(dg.AssetObservation(
                        asset_key=key, partition=str(partition_key(result.day, result.symbol)),
                        metadata=day_metadata(result)))
            if failure_cause is not None:
                _fail_on_failed_days(name, results, failure_cause, failed_partitions_metadata)
            if len(results) == 1:
                return dg.MaterializeResult(metadata=day_metadata(results[0]))
            return dg.MaterializeResult(metadata=summary(results))

    return _daily


def _fail_on_failed_days(name: str, results: list[R], failure_cause: Callable[[R], str | None],
                         with_metadata: bool) -> None:
    """Fail the run naming the days that failed (they were not stored), the first ten with their cause."""
    failed = [(r, cause) for r in results if (cause := failure_cause(r)) is not None]
    if not failed:
        return
    causes = "; ".join(f"{partition_key(r.day, r.symbol)}: {cause}" for r, cause in failed[:10])
    description = f"{name}: {len(failed)} of {len(results)} day(s) failed and were not stored: {causes}"
    if with_metadata:
        raise dg.Failure(description=description,
                         metadata={"failed_partitions": [str(partition_key(r.day, r.symbol)) for r, _ in failed]})
    raise dg.Failure(description=description)


def summed_sources(per_day: Iterable[Mapping[str, int]]) -> dg.JsonMetadataValue:
    """Rows per source (archive, REST) over a range run's days, for its summary."""
    total: Counter[str] = Counter()
    for sources in per_day:
        total.update(sources)
    return dg.MetadataValue.json(dict(total))
