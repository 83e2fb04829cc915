"""One asset per (kind, interval) for mark price, index price and premium index klines, built by one factory.

Same partitions, backfill policy, pool and metadata as the kline assets (defs/klines/assets.py), and the
same loader: `KlineLoader(kind=...)` writes rows and ledger rows in one transaction per batch. The rows go
to the kind's own table (storage/tables_price_klines.py), the ledger rows to the kind's dataset.
Intervals: the configured kline intervals that are in PRICE_KLINE_INTERVALS (1m for detail, 1h for
overviews); the other intervals are aggregates of these and are not worth a Binance request each.
"""


import warnings
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg

from marketdata_assets.binance.intervals import InvalidInputError, day_start_ms
from marketdata_assets.defs.constants import BINANCE_POOL, EXCHANGE_INFO_KEY, TAG_INTERVAL
from marketdata_assets.defs.datasets.common import run_partitions
from marketdata_assets.defs.klines.metadata import day_metadata, preview, range_metadata
from marketdata_assets.defs.klines.partitions import partition_key
from marketdata_assets.defs.resources import MarketDataResource
from marketdata_assets.ingest.klines import FAILED, KIND_DATASETS, DayResult
from marketdata_assets.storage.tables_price_klines import PRICE_KLINE_KINDS

PRICE_KLINE_INTERVALS = ("1m", "1h")
TAG_KIND = "marketdata/kline_kind"
OBSERVE_EVERY_DAY_UP_TO = 62
DESCRIPTIONS = {
    "markPriceKlines": "mark price",
    "indexPriceKlines": "index price (by pair, which for USD-M perpetuals is the symbol)",
    "premiumIndexKlines": "premium index (signed: can be zero or negative)",
}


def price_kline_asset_key(kind: str, interval: str) -> dg.AssetKey:
    """`mark_price_klines_1m`, `index_price_klines_1h`, `premium_index_klines_1m`, ..."""
    return dg.AssetKey(f"{PRICE_KLINE_KINDS[kind]}_{interval}")


def price_kline_intervals(configured: Sequence[str]) -> list[str]:
    return [i for i in configured if i in PRICE_KLINE_INTERVALS]


def build_price_kline_asset(kind: str, interval: str, partitions_def: dg.PartitionsDefinition,
                            days_per_run: int) -> dg.AssetsDefinition:
    key = price_kline_asset_key(kind, interval)
    table = PRICE_KLINE_KINDS[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)

        @dg.asset(
            key=key,
            partitions_def=partitions_def,
            backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=days_per_run),
            pool=BINANCE_POOL,
            deps=[EXCHANGE_INFO_KEY],
            group_name="price_klines",
            kinds={"python", "binance"},
            tags={TAG_INTERVAL: interval, TAG_KIND: kind},
            metadata={"interval": interval, "table": table, "kind": kind},
            description=(
                f"Binance USD-M Futures {DESCRIPTIONS[kind]} {interval} klines, one partition per UTC day and "
                f"symbol: archive first (sha256 verified), REST for the rest and every hole. Rows in `{table}` "
                "(volumes are Binance's \"0\"), per-day figures in `partition_ledger`."
            ),
        )
        def _price_klines(context: dg.AssetExecutionContext, marketdata: MarketDataResource) -> dg.MaterializeResult:
            return load_price_partitions(context, marketdata, kind, interval, context.partition_keys)

    return _price_klines


def load_price_partitions(context: dg.AssetExecutionContext, marketdata: MarketDataResource, kind: str,
                          interval: str, keys: Sequence[str]) -> dg.MaterializeResult:
    """Load the run's partitions with `KlineLoader(kind=...)`; report per day; fail naming every failed day."""
    key = price_kline_asset_key(kind, interval)
    name = key.path[-1]
    grouped = run_partitions(name, keys)
    runtime = marketdata.runtime()
    loader = runtime.kline_loader(kind=kind)
    results: list[DayResult] = []
    for symbol, days in grouped.items():
        try:
            loaded = loader.load(symbol, interval, days)
        except InvalidInputError as exc:
            shown = ", ".join(str(partition_key(d, symbol)) for d in days[:5])
            raise dg.Failure(description=f"{name} partition(s) {shown}: {exc}") from None
        context.log.info(f"{symbol} {kind} {interval}: {len(loaded)} day(s), "
                         f"{sum(r.stored_rows for r in loaded)} rows stored")
        results += loaded
    if len(results) > 1:
        for result in results:
            if len(results) > OBSERVE_EVERY_DAY_UP_TO and result.status in ("complete", "unchanged") and not [
                g for g in result.gaps if g.cls != "out_of_range"
            ]:
                continue
            context.log_event(dg.AssetObservation(
                asset_key=key, partition=str(partition_key(result.day, result.symbol)),
                metadata=day_metadata(result),
            ))
    failed = [r for r in results if r.status == FAILED]
    if failed:
        causes = "; ".join(f"{partition_key(r.day, r.symbol)}: {r.error}" for r in failed[:10])
        raise dg.Failure(
            description=f"{name}: {len(failed)} of {len(results)} day(s) failed and were not stored: {causes}",
            metadata={"failed_partitions": [str(partition_key(r.day, r.symbol)) for r in failed]},
        )
    meta = day_metadata(results[0]) if len(results) == 1 else range_metadata(results, dict(loader.written))
    meta["ledger_dataset"] = KIND_DATASETS[kind]
    last = max(results, key=lambda r: (r.day, r.symbol))
    start = datetime.fromtimestamp(day_start_ms(last.day) / 1000, tz=UTC)
    frame = runtime.repo.get_klines(last.symbol, interval, start, start + timedelta(days=1), kind=kind)
    meta[f"preview ({last.symbol} {last.day})"] = preview(frame)
    return dg.MaterializeResult(metadata=meta)
