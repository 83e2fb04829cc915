"""`exchange_info`: the tracked symbols as the exchange describes them (the configured universe and every
other symbol of the `symbols` partitions, e.g. one added in the UI).

Its materialization carries the universe (status, contract type, onboard/delivery dates) as metadata;
the daily schedule reads the latest one to stop scheduling symbols that are no longer trading. Every
kline asset depends on it in the lineage graph (listing and delisting decide what is out of range).
"""

from datetime import UTC, datetime
from typing import Any

import dagster as dg

from marketdata_assets.binance.exchange_info import SymbolInfo, parse_exchange_info
from marketdata_assets.defs.constants import BINANCE_POOL, EXCHANGE_INFO_KEY
from marketdata_assets.defs.partitions import SYMBOLS_PARTITIONS_NAME
from marketdata_assets.defs.resources import MarketDataResource

TRADING_SYMBOLS_KEY = "trading_symbols"


def _day(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date().isoformat() if ms is not None else ""


def universe_metadata(universe: tuple[str, ...], symbols: dict[str, SymbolInfo]) -> dict[str, Any]:
    listed = {s: symbols[s] for s in universe if s in symbols}
    trading = sorted(s for s, info in listed.items() if info.is_trading_perpetual)
    table = ["| symbol | status | contract | onboard | delivery |", "|---|---|---|---|---|"]
    for name in universe:
        info = listed.get(name)
        if info is None:
            table.append(f"| {name} | not listed | | | |")
        else:
            table.append(f"| {name} | {info.status} | {info.contract_type} | {_day(info.onboard_ms)} | "
                         f"{_day(info.delivery_ms)} |")
    return {
        "exchange_symbols": len(symbols),
        TRADING_SYMBOLS_KEY: dg.MetadataValue.json(trading),
        "universe": dg.MetadataValue.json({s: info.as_dict() for s, info in listed.items()}),
        "not_listed": dg.MetadataValue.json(sorted(set(universe) - set(listed))),
        "symbols": dg.MetadataValue.md("\n".join(table)),
    }


def tracked_symbols(universe: tuple[str, ...], partitions: list[str]) -> tuple[str, ...]:
    """The configured universe, then every other symbol of the `symbols` partitions (added by hand)."""
    return tuple(dict.fromkeys([*universe, *sorted(partitions)]))


def build_exchange_info_asset(universe: tuple[str, ...]) -> dg.AssetsDefinition:
    @dg.asset(
        key=EXCHANGE_INFO_KEY,
        group_name="exchange",
        kinds={"python", "binance"},
        pool=BINANCE_POOL,
        description="exchangeInfo of Binance USD-M Futures for the tracked symbols (the configured universe "
                    "and those added by hand): status, contract type, onboard and delivery dates.",
    )
    def exchange_info(context: dg.AssetExecutionContext, marketdata: MarketDataResource) -> dg.MaterializeResult:
        from marketdata_assets.binance.rest import BinanceRestClient

        rest = BinanceRestClient.from_settings(marketdata.settings())
        try:
            symbols = parse_exchange_info(rest.exchange_info())
        finally:
            rest.close()
        tracked = tracked_symbols(universe, context.instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME))
        meta = universe_metadata(tracked, symbols)
        context.log.info(f"exchangeInfo: {len(symbols)} symbols, trading among the tracked: "
                         f"{meta[TRADING_SYMBOLS_KEY].value}")
        return dg.MaterializeResult(metadata=meta)

    return exchange_info


def latest_trading_symbols(instance: dg.DagsterInstance) -> set[str] | None:
    """Trading symbols of the latest `exchange_info` materialization (None when there is none yet)."""
    event = instance.get_latest_materialization_event(EXCHANGE_INFO_KEY)
    materialization = event.asset_materialization if event is not None else None
    if materialization is None or TRADING_SYMBOLS_KEY not in materialization.metadata:
        return None
    return set(materialization.metadata[TRADING_SYMBOLS_KEY].value)
