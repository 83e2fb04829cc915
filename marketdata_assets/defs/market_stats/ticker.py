"""`ticker_24h`: one REST 24 h ticker snapshot per discovered symbol per run, and its consistency check.

Not partitioned: the ticker is a rolling window ending now, so there is nothing to backfill; an hourly
schedule (`ticker_24h_hourly`) keeps a series. The check reads the run's snapshots back from the store.
"""


import dagster as dg

from marketdata_assets.defs.constants import BINANCE_POOL, EXCHANGE_INFO_KEY
from marketdata_assets.defs.partitions import SYMBOLS_PARTITIONS_NAME
from marketdata_assets.defs.resources import MarketDataResource
from marketdata_assets.ingest.ticker import TickerFormatError, consistency_problems, snapshot
from marketdata_assets.storage.stream_reads import latest_tickers

TICKER_KEY = dg.AssetKey("ticker_24h")


@dg.asset(
    key=TICKER_KEY,
    pool=BINANCE_POOL,
    deps=[EXCHANGE_INFO_KEY],
    group_name="market_stats",
    kinds={"python", "binance"},
    metadata={"table": "ticker_24h"},
    description="Binance USD-M Futures 24 h ticker (rolling window, REST /fapi/v1/ticker/24hr): one snapshot per "
                "discovered symbol per run, appended to `ticker_24h`.",
)
def ticker_24h_asset(context: dg.AssetExecutionContext, marketdata: MarketDataResource) -> dg.MaterializeResult:
    symbols = sorted(context.instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME))
    if not symbols:
        raise dg.Failure(description="ticker_24h: no symbols discovered yet (run exchange_info / symbol_discovery)")
    runtime = marketdata.runtime()
    try:
        rows = snapshot(runtime.engine, runtime.rest, symbols)
    except TickerFormatError as exc:
        raise dg.Failure(description=f"ticker_24h: {exc}") from None
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(rows),
        "snapshots": dg.MetadataValue.md(
            "| symbol | close time (ms) | last | change % | volume | trades |\n|---|---|---|---|---|---|\n" + "\n".join(
                f"| {r['symbol']} | {r['close_time']} | {r['last_price']} | {r['price_change_percent']} | "
                f"{r['volume']} | {r['trade_count']} |" for r in rows)),
        "close_times": dg.MetadataValue.json({r["symbol"]: r["close_time"] for r in rows}),
    })


@dg.asset_check(asset=TICKER_KEY, name="consistent",
                description="Each symbol's latest snapshot: a 24 h window, ids matching the trade count, last "
                            "price within [low, high].")
def ticker_24h_check(context: dg.AssetCheckExecutionContext, marketdata: MarketDataResource) -> dg.AssetCheckResult:
    rows = latest_tickers(marketdata.runtime().engine)
    problems = {}
    for row in rows:
        found = consistency_problems(row)
        if found:
            problems[row["symbol"]] = found
    return dg.AssetCheckResult(passed=bool(rows) and not problems,
                               metadata={"symbols": len(rows), "problems": dg.MetadataValue.json(problems)},
                               description="no snapshot stored" if not rows else None)


def build_ticker_24h_schedule(default_status: dg.DefaultScheduleStatus) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="ticker_24h_hourly", cron_schedule="0 * * * *", execution_timezone="UTC",
        target=dg.AssetSelection.assets(TICKER_KEY), default_status=default_status,
        description="One 24 h ticker snapshot per symbol every hour (start it to keep a series).",
    )
