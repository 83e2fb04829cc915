"""Symbol discovery: the dynamic `symbols` partitions only grow, except for what the exchange delisted.

- a symbol of the configured universe (MARKETDATA_SYMBOLS) that is a trading perpetual is added;
- a symbol added by hand (the UI's "Add a partition", `marketdata download`) stays: discovery never removes
  a symbol because it is not configured;
- a symbol not configured that the exchange delisted (settling, closed, delivered) or no longer lists is
  removed, with a log line saying so; its stored rows stay. A configured symbol is never removed: it
  keeps its partitions (its history stays visible) and the daily schedule stops requesting it.
When what the exchange says about these symbols changes, the sensor also refreshes `exchange_info`.
"""

import hashlib
import json

import dagster as dg

from marketdata_assets.binance.exchange_info import SymbolInfo, parse_exchange_info
from marketdata_assets.defs.constants import EXCHANGE_INFO_KEY, REASON_DISCOVERY, TAG_REASON
from marketdata_assets.defs.exchange.assets import tracked_symbols
from marketdata_assets.defs.partitions import SYMBOLS_PARTITIONS_NAME, symbols_partitions
from marketdata_assets.defs.resources import MarketDataResource


def delisted_reason(symbol: str, symbols: dict[str, SymbolInfo]) -> str | None:
    """Why the exchange says `symbol` is gone (None: it is not)."""
    info = symbols.get(symbol)
    if info is None:
        return "no longer listed in exchangeInfo"
    return f"status {info.status}" if info.is_delisted else None


def build_symbol_discovery_sensor(universe: tuple[str, ...], interval_seconds: int = 3600) -> dg.SensorDefinition:
    @dg.sensor(
        name="symbol_discovery",
        minimum_interval_seconds=interval_seconds,
        target=dg.AssetSelection.assets(EXCHANGE_INFO_KEY),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Adds the configured symbols that are trading perpetuals to the `symbols` partitions; "
                    "symbols added by hand stay until the exchange delists them; refreshes exchange_info "
                    "when what the exchange says about them changed.",
    )
    def symbol_discovery(context: dg.SensorEvaluationContext, marketdata: MarketDataResource):
        from marketdata_assets.binance.rest import BinanceRestClient

        rest = BinanceRestClient.from_settings(marketdata.settings())
        try:
            symbols = parse_exchange_info(rest.exchange_info())
        finally:
            rest.close()
        current = context.instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME)
        add = [s for s in universe if s in symbols and symbols[s].is_trading_perpetual and s not in current]
        gone = {s: reason for s in current if s not in universe
                if (reason := delisted_reason(s, symbols)) is not None}
        tracked = tracked_symbols(universe, [s for s in current if s not in gone])
        state = {s: symbols[s].as_dict() for s in tracked if s in symbols}
        digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]

        requests = []
        if add:
            requests.append(symbols_partitions.build_add_request(add))
            context.log.info(f"added to the symbols partitions (configured, trading): {', '.join(add)}")
        if gone:
            requests.append(symbols_partitions.build_delete_request(sorted(gone)))
            for symbol, reason in sorted(gone.items()):
                context.log.info(f"removed {symbol} from the symbols partitions: delisted by the exchange "
                                 f"({reason}); its stored rows stay")
        runs = []
        if digest != context.cursor:
            runs.append(dg.RunRequest(run_key=f"exchange_info:{digest}", asset_selection=[EXCHANGE_INFO_KEY],
                                      tags={TAG_REASON: REASON_DISCOVERY}))
        not_trading = sorted(s for s in tracked if not (s in symbols and symbols[s].is_trading_perpetual))
        if not requests and not runs:
            return dg.SkipReason(f"symbols unchanged: {len(current)} partition(s); not trading or not listed: "
                                 f"{', '.join(not_trading) or 'none'}")
        return dg.SensorResult(run_requests=runs, dynamic_partitions_requests=requests, cursor=digest)

    return symbol_discovery
