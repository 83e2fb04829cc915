"""The sidecar's tables as external assets: in the lineage graph, with freshness policies.

The sidecar is not a Dagster run; `stream_monitor` (sensors.py) reports a materialization of each table
when the sidecar has written to it since the last tick, so the freshness policies see real write times.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

GROUP = "streaming"

# how stale each live table may get before the UI flags it (warn, fail)
FRESHNESS = {
    "stream_klines": (timedelta(minutes=3), timedelta(minutes=10)),
    "stream_agg_trades": (timedelta(minutes=2), timedelta(minutes=10)),
    "stream_mark_price": (timedelta(minutes=2), timedelta(minutes=10)),
    "stream_ticker_24h": (timedelta(minutes=2), timedelta(minutes=10)),
    "stream_order_books": (timedelta(minutes=2), timedelta(minutes=10)),
}
DESCRIPTIONS = {
    "stream_klines": "Closed klines from the WebSocket (kline_data rows with source 'stream'); provisional until "
                     "the archive settles the day.",
    "stream_agg_trades": "Aggregate trades (agg_trades), id-continuous; holes filled from REST by fromId.",
    "stream_mark_price": "Mark price, index price and funding rate updates (mark_price_updates).",
    "stream_ticker_24h": "Rolling 24h tickers (ticker_24h).",
    "stream_order_books": "Top-N levels of the locally synchronised order books (order_book_snapshots).",
}


def build_stream_specs(store: str) -> list[dg.AssetSpec]:
    """`store`: the kind of the configured market-data store (the sidecar writes the same database)."""
    specs = [
        dg.AssetSpec(
            name, group_name=GROUP, description=DESCRIPTIONS[name], kinds={"python", store},
            freshness_policy=dg.FreshnessPolicy.time_window(fail_window=fail, warn_window=warn),
            metadata={"writer": "marketdata stream (sidecar)"},
        )
        for name, (warn, fail) in FRESHNESS.items()
    ]
    specs.append(
        dg.AssetSpec(
            "stream_gaps", group_name=GROUP, deps=list(FRESHNESS), kinds={"python", store},
            description="Every window during which a stream was down; kline and trade holes are filled from REST "
                        "by the sidecar, and what REST could not fill becomes a repair run (stream_gap_repair).",
        )
    )
    return specs
